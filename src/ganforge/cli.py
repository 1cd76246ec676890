"""The `ganforge` command: argument parsing only; every command calls the public API."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Sequence

from ganforge import zoo
from ganforge.bounds import MAX_EVAL_SAMPLES, check_at_most, check_seed
from ganforge.cli_parser import Parser, remember, unknown_flags
from ganforge.cli_parser import option_value as _option_value
from ganforge.cli_words import install_argparse_words, translate_parser
from ganforge.config import (
    SECTIONS,
    TrainConfig,
    flag_name,
    import_plugin,
    load_config_file,
    shared_option_names,
)
from ganforge.config.model_options import option_fields
from ganforge.errors import GanforgeError, TrainingStopped
from ganforge.i18n import LANGUAGES, _, current_language, set_language

DEMO_OUT = "runs/demo"
# train and bench take some 150 flags: their usage line names the few that matter
TRAIN_USAGE = "ganforge {command} [--config FILE] [--model NAME] [--data NAME] [...] (--help: all)"
PATH_OPTIONS = ("data", "data_root", "out", "inception_weights")


def _type_of(field: dataclasses.Field):
    kind = str(field.type)
    if kind.startswith("int"):
        return int
    if kind.startswith("float"):
        return float
    return str


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, grouped by section, then one per model option (a model's
    own, from its file); all default to None so that only given flags override."""
    defaults = TrainConfig()
    for title, section in SECTIONS:
        group = parser.add_argument_group(f"{title} options")
        for field in dataclasses.fields(section):
            if field.metadata.get("cli") is not False:  # class_names: recorded, not chosen
                default = getattr(defaults, field.name)
                _add_option(group, field, default, _models_own_defaults(field.name, default))
    group = parser.add_argument_group(
        "each model's own options", "given to another model, they are an error"
    )
    for field, models in option_fields().values():
        # an option of several models: the first one's default, then the others' that differ
        values = {m: getattr(TrainConfig(model=m).model_options, field.name) for m in models}
        default = values[models[0]]
        by_value: dict[object, list[str]] = {}
        for model, value in values.items():
            if value != default:
                by_value.setdefault(value, []).append(model)
        if by_value and isinstance(default, bool):
            default = None  # a switch whose sense differs by model: its help says so
        others = "".join(f"; {', '.join(names)}: {value}" for value, names in by_value.items())
        _add_option(group, field, default, others)


def _models_own_defaults(name: str, default) -> str:
    """'; cgan, acgan: 0.0016; r3gan: 0.0002' — the models whose own default for an option
    differs from the shared one (models.registry), so the help does not mislead."""
    from ganforge.models import list_models, model_defaults

    by_value: dict[object, list[str]] = {}
    for model in list_models():
        value = model_defaults(model).get(name, default)
        if value != default:
            by_value.setdefault(value, []).append(model)
    return "".join(f"; {', '.join(models)}: {value}" for value, models in by_value.items())


def _add_option(group, field: dataclasses.Field, default, others: str = "") -> None:
    """The flag of a config field: --NAME VALUE, or a switch (--NAME, or --no-NAME when on by
    default) for a bool; `default` is shown in the help (None: the help says it), with
    `others`, the models' own defaults."""
    if isinstance(default, bool) or str(field.type) == "bool":
        on = field.name.replace("_", "-")
        group.add_argument(
            f"--no-{on}" if default else f"--{on}",
            dest=field.name,
            action="store_const",
            const=not default,
            default=None,
            help=f"do not {field.metadata['help']}" if default else field.metadata["help"],
        )
        return
    help_text = field.metadata.get("help", "")
    if default not in (None, ""):  # None and "" (off) are described in the help itself
        help_text += f" (default: {default}{others})"
    kind = _type_of(field)
    metavar = {int: "N", float: "X"}.get(kind, "PATH" if field.name in PATH_OPTIONS else "NAME")
    group.add_argument(
        flag_name(field.name),
        dest=field.name,
        type=kind,
        default=None,
        metavar=metavar,
        help=help_text,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ganforge",
        description="Train, sample and inspect GANs.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a model (or resume a run)",
        description="Train a model. CLI flags override --config.",
        usage=TRAIN_USAGE.format(command="train"),
    )
    train.add_argument("--config", metavar="FILE", help="TOML, JSON or YAML file of options")
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="continue RUN from its newest checkpoint (to --steps, if given)",
    )
    _add_train_options(train)
    train.add_argument(
        "--ema",
        dest="ema_decay",
        type=float,
        default=None,
        metavar="DECAY",
        help="the same as --ema-decay",
    )

    demo = commands.add_parser(
        "demo",
        help="train the default DCGAN on embedded MNIST digits",
        description="Train a DCGAN on mnist-mini (about 3 minutes on 2 CPU "
        "cores: 2.6 measured) and print where its samples are.",
    )
    demo.add_argument("--out", default=DEMO_OUT, help=f"run folder (default: {DEMO_OUT})")
    demo.add_argument("--steps", type=int, default=None, help="training steps (default: 1500)")

    sample = commands.add_parser(
        "sample",
        help="write samples of a trained run",
        description="Write samples as a PNG grid or a uint8 NPZ.",
    )
    sample.add_argument("run", metavar="RUN", help="a run folder")
    sample.add_argument(
        "--n",
        type=int,
        help="number of samples (default: 64); with --classes, samples per class (default: 8)",
    )
    sample.add_argument(
        "--class",
        dest="class_",
        metavar="NAME|INDEX",
        help="conditional runs: draw this class (a name or an index)",
    )
    sample.add_argument(
        "--classes",
        metavar="all|A,B,...",
        help="conditional runs: one row per class (all, or the listed ones)",
    )
    sample.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    sample.add_argument(
        "--out",
        default="samples.png",
        help="grid.png, or samples.npz: `images` uint8 (N, H, W, C), and `labels` for a "
        "conditional run (default: samples.png)",
    )
    _add_checkpoint_option(sample)
    sample.add_argument(
        "--no-ema",
        action="store_true",
        help="sample the raw generator instead of its weight average",
    )
    _add_truncation_options(sample)

    report = commands.add_parser(
        "report",
        help="write RUN/report.html: curves, events, samples over time, evaluation",
        description="Write a self-contained HTML page about a run (and samples/progress.gif).",
    )
    report.add_argument("run", metavar="RUN", help="a run folder")
    report.add_argument("--out", metavar="FILE", help="the page (default: RUN/report.html)")
    doctor = commands.add_parser(
        "doctor",
        help="explain a run in words: what the doctor saw, likely causes, what to try",
        description="Explain a run in prose from its folder (config.json, events.jsonl, "
        "metrics.jsonl): what the doctor saw and when, which of the run's options likely "
        "caused it, and what to try first.",
    )
    doctor.add_argument("run", metavar="RUN", help="a run folder")
    doctor.add_argument(
        "--try",
        dest="trials",
        action="store_true",
        help="branch the run from its checkpoint before the doctor's first event, train each "
        "suggested remedy and the unchanged run for --steps steps in parallel processes, and "
        "rank them by the run's eval metric (RUN/trials/trials.md and trials.html)",
    )
    doctor.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="steps each branch trains (default: as many as the run had left after the branch)",
    )
    doctor.add_argument(
        "--remedies", type=int, default=4, metavar="K", help="remedies tried (default: 4)"
    )
    doctor.add_argument(
        "--jobs", type=int, metavar="J", help="branches trained at once (default: one per core)"
    )
    doctor.add_argument(
        "--n",
        type=int,
        metavar="N",
        help="samples each branch is scored on (default: ganforge eval's)",
    )
    doctor.add_argument("--out", metavar="DIR", help="where the branches go (default: RUN/trials)")
    translate = commands.add_parser(
        "translate",
        help="translate images with a translator run (pix2pix, cyclegan)",
        description="Translate an image, or every image in a folder, with a translator run: one "
        "PNG per input in --out, with the same relative name.",
    )
    translate.add_argument("run", metavar="RUN", help="a translator run folder")
    translate.add_argument("input", metavar="INPUT", help="an image file or a folder of images")
    translate.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs")
    _add_checkpoint_option(translate)
    translate.add_argument(
        "--no-ema", action="store_true", help="use the raw generator, not its weight average"
    )
    translate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: cpu)")
    translate.add_argument(
        "--direction",
        default="a2b",
        choices=("a2b", "b2a"),
        help="a2b: the way the model was trained (default); b2a: back, for a model that learns "
        "both ways (cyclegan)",
    )
    _add_export_command(commands)
    _add_bench_command(commands)
    _add_eval_commands(commands)
    _add_latent_commands(commands)
    _add_app_command(commands)
    commands.add_parser("models", help="list the models")
    commands.add_parser("datasets", help="list the built-in datasets")
    _add_data_commands(commands)
    _add_language_option(parser)
    return parser


def _add_language_option(parser: argparse.ArgumentParser) -> None:
    """`--lang es|en` on `ganforge` and every command (main() reads it before parsing: it sets
    the language of the doctor's words, the reports, the help and the messages)."""
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=None,
        help="language of the help, the messages, the doctor's words and the reports "
        "(default: GANFORGE_LANG, else the locale; English where it is neither)",
    )
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for command in dict.fromkeys(action.choices.values()):
            _add_language_option(command)


def _add_checkpoint_option(parser: argparse.ArgumentParser) -> None:
    """--checkpoint, for every command that reads a run's weights (Run.load's choices)."""
    parser.add_argument(
        "--checkpoint", metavar="FILE", help="newest (default), best, or a checkpoint file"
    )


def _add_export_command(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="the sampling network alone, as ONNX, TorchScript or a Hub-style folder",
        description="Export a run's sampling network (its EMA copy, in eval mode, with its "
        "class labels or source images as inputs; any batch size), checked against torch on "
        "new inputs: ONNX (generator.onnx, checked with onnxruntime; pip install "
        "'ganforge[export]'), TorchScript (generator.pt), or a folder (model.safetensors, "
        "config.json, README.md model card) that ganforge.load_generator and every ganforge "
        "command read like a run.",
    )
    export.add_argument("run", metavar="RUN", help="a run folder")
    export.add_argument(
        "--format", required=True, choices=("onnx", "torchscript", "folder"), help="what to write"
    )
    export.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder")
    _add_checkpoint_option(export)
    export.add_argument(
        "--no-ema", action="store_true", help="the raw generator, not its weight average"
    )


def cmd_export(args: argparse.Namespace) -> None:
    from ganforge.export import export

    print(export(args.run, args.format, args.out, args.checkpoint, ema=not args.no_ema))


def _add_bench_command(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench",
        help="time the training step of a config on this machine: img/s and where time goes",
        description="Train a config (any training flag) in a temporary folder for --warmup "
        "untimed and --steps timed iterations (default 40); print images per second and the "
        "time of data, each phase's step, diagnostics and the rest. Keeps nothing.",
        usage=TRAIN_USAGE.format(command="bench"),
    )
    bench.add_argument("--config", metavar="FILE", help="TOML, JSON or YAML file of options")
    bench.add_argument(
        "--warmup", type=int, default=5, metavar="N", help="untimed first steps (default: 5)"
    )
    _add_train_options(bench)


def _add_eval_commands(commands: argparse._SubParsersAction) -> None:
    from ganforge.evaluate import METRICS

    evaluate = commands.add_parser(
        "eval",
        help="measure a run's samples: FID, KID, precision/recall, coverage, modes, IS",
        description="Sample a run's generator and compare the samples with the run's real "
        "data. Prints a table and writes RUN/eval.json.",
    )
    evaluate.add_argument("run", metavar="RUN", help="a run folder")
    evaluate.add_argument(
        "--n",
        type=int,
        help="samples (default: 10000; as PacGAN, 2500 for a run of points and 26000 for "
        "stacked-mnist)",
    )
    evaluate.add_argument(
        "--metrics",
        help=f"comma-separated, from {','.join(METRICS)} (default: all that apply; cond: "
        "class accuracy and intra-class FID of a class-conditional run)",
    )
    evaluate.add_argument(
        "--extractor",
        metavar="NAME|FILE",
        help="feature extractor: inception, mnist, or a train-extractor file "
        "(default: mnist for grayscale data, inception for colour)",
    )
    evaluate.add_argument(
        "--inception-weights", metavar="FILE", help="Inception-v3 FID weights file"
    )
    _add_checkpoint_option(evaluate)
    evaluate.add_argument("--no-ema", action="store_true", help="evaluate the raw generator")
    _add_truncation_options(
        evaluate, "; the result goes to RUN/eval_truncation_MODE_PSI.json, not eval.json"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: cpu)")
    evaluate.add_argument("--no-cache", action="store_true", help="recompute real features")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.add_argument(
        "--pairs",
        metavar="FOLDER",
        help="pix2pix: held-out image pairs to measure L1/PSNR/SSIM on (default: the test "
        "split of the run's paired dataset)",
    )

    metrics = commands.add_parser(
        "metrics",
        help="feature extractors for the metrics",
        description="List the feature extractors, or train a domain classifier to use as one.",
    )
    actions = metrics.add_subparsers(dest="metrics_command", required=True, metavar="ACTION")
    actions.add_parser("extractors", help="list the built-in feature extractors")
    train = actions.add_parser(
        "train-extractor",
        help="train a small classifier on a labelled dataset, for offline metrics",
        description="Train a domain classifier on a labelled dataset; its features give "
        "FID/KID/PR and its predictions mode coverage and IS. Records its held-out accuracy.",
    )
    train.add_argument(
        "--data", default="mnist-mini", help="a labelled dataset (default: mnist-mini)"
    )
    train.add_argument("--out", required=True, metavar="FILE", help="output .safetensors file")
    train.add_argument("--name", help="the extractor's name (default: the dataset's)")
    train.add_argument("--epochs", type=int, default=15, help="epochs (default: 15)")
    train.add_argument(
        "--heldout-per-class", type=int, default=100, help="test images per class (default: 100)"
    )
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument(
        "--resolution", type=int, help="image size (default: the dataset's; folders: 64)"
    )
    train.add_argument("--data-root", metavar="DIR", help="where dataset files live")


def _add_latent_commands(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="evaluate several runs alike: a side-by-side table with sample grids",
        description="Evaluate runs on the same data with the same metrics, samples and "
        "extractor; print a Markdown table and write DIR/compare.md, compare.html (sample "
        "grids embedded) and compare.json.",
    )
    compare.add_argument("runs", nargs="+", metavar="RUN", help="run folders (two or more)")
    compare.add_argument("--n", type=int, default=10000, help="samples per run (default: 10000)")
    compare.add_argument(
        "--metrics", help="comma-separated, as for `ganforge eval` (default: fid,pr,dc,modes)"
    )
    compare.add_argument(
        "--extractor",
        metavar="NAME|FILE",
        help="feature extractor (default: mnist for grayscale data, inception for colour)",
    )
    compare.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    compare.add_argument("--out", default="compare", metavar="DIR", help="(default: compare)")
    compare.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: cpu)")
    compare.add_argument("--no-progress", action="store_true", help="no progress bars")

    latent = commands.add_parser(
        "latent",
        help="the latent space: interpolate, vector arithmetic, a walk, VAE reconstructions, "
        "InfoGAN code traversals",
        description="Explore the latent space of a run's generator (any model that draws "
        "from noise; a conditional one with --class).",
    )
    actions = latent.add_subparsers(dest="latent_command", required=True, metavar="ACTION")

    def action(name: str, **texts) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, **texts)
        parser.add_argument("run", metavar="RUN", help="a run folder")
        _add_checkpoint_option(parser)
        parser.add_argument(
            "--no-ema", action="store_true", help="the raw generator, not its weight average"
        )
        if name not in ("recon", "codes"):
            parser.add_argument(
                "--class", dest="class_", metavar="NAME|INDEX", help="conditional runs: the class"
            )
        if name not in ("recon", "codes", "project"):
            _add_truncation_options(parser, "; the code of a seed is then its truncated code")
        return parser

    interp = action(
        "interp",
        help="frames between the samples of two seeds",
        description="Interpolate between the codes of two seeds; the end frames are "
        "`ganforge sample RUN --n 1 --seed SEED`.",
    )
    interp.add_argument(
        "--from",
        dest="seed_from",
        required=True,
        metavar="SEED|FILE.npy",
        help="where the path starts: a seed's sample, or a code file (`latent project` writes "
        "one per image)",
    )
    interp.add_argument(
        "--to",
        dest="seed_to",
        required=True,
        metavar="SEED|FILE.npy",
        help="where the path ends: a seed's sample, or a code file",
    )
    interp.add_argument("--steps", type=int, default=10, help="frames (default: 10)")
    interp.add_argument(
        "--mode", default="slerp", help="lerp (a line) or slerp (a great circle; default)"
    )
    interp.add_argument(
        "--out", default="interp.png", help="FILE.png (one row) or FILE.gif (default: interp.png)"
    )
    arith = action(
        "arith",
        help="vector arithmetic a - b + c on averaged codes (DCGAN paper)",
        description="Average the codes of each group of seeds and decode a - b + c. The grid: "
        "a row per group (its samples, then its average), then the result.",
    )
    for flag in ("--a", "--b", "--c"):
        arith.add_argument(
            flag,
            required=True,
            metavar="SEEDS",
            help="comma-separated seeds and code files (FILE.npy: every code in it, e.g. the "
            "codes of real images from `latent project`)",
        )
    arith.add_argument("--out", default="arith.png", help="FILE.png (default: arith.png)")
    gallery = action(
        "gallery",
        help="samples captioned with their seeds, to pick groups for arith",
        description="Draw the samples of seeds FIRST to FIRST+N-1, each captioned with its "
        "seed (the sample `ganforge sample RUN --n 1 --seed SEED` draws): pick a few that share "
        "a trait as a group for `latent arith --a/--b/--c`.",
    )
    gallery.add_argument("--n", type=int, default=64, help="samples (default: 64)")
    gallery.add_argument("--first", type=int, default=0, help="the first seed (default: 0)")
    gallery.add_argument("--columns", type=int, default=8, help="per row (default: 8)")
    gallery.add_argument("--out", default="gallery.png", help="FILE.png (default: gallery.png)")
    walk = action(
        "walk",
        help="a smooth looping walk through random codes, as a GIF",
        description="Slerp through --keys random codes and back to the first.",
    )
    walk.add_argument("--keys", type=int, default=8, help="codes to pass (default: 8)")
    walk.add_argument("--frames", type=int, default=12, help="frames per code (default: 12)")
    walk.add_argument("--seed", type=int, default=0, help="seed of the codes (default: 0)")
    walk.add_argument("--out", default="walk.gif", help="FILE.gif or FILE.png (default: walk.gif)")
    codes = action(
        "codes",
        help="InfoGAN: the code traversals (a row per category, a continuous code swept)",
        description="Draw what each latent code of an infogan run does, as Chen et al. 2016 "
        "do: a block per continuous code, one row per value of the categorical code, the code "
        "swept from -SPAN to SPAN along the columns, one noise vector per block.",
    )
    codes.add_argument("--out", default="codes.png", help="FILE.png (default: codes.png)")
    codes.add_argument("--columns", type=int, default=8, help="sweep steps (default: 8)")
    codes.add_argument(
        "--span",
        type=float,
        default=2.0,
        help="sweep to +-SPAN (codes train in [-1, 1]; default: 2)",
    )
    codes.add_argument("--seed", type=int, default=0, help="seed of the noise (default: 0)")
    recon = action(
        "recon",
        help="VAE: encode and decode images (input rows over reconstruction rows)",
        description="Encode an image, or every image in a folder, with a vae run and decode "
        "the posterior means; write the inputs and reconstructions as one grid.",
    )
    recon.add_argument("input", metavar="INPUT", help="an image file or a folder of images")
    recon.add_argument("--out", default="recon.png", help="FILE.png (default: recon.png)")
    project = action(
        "project",
        help="real images into the latent space: the code of each, and its reconstruction",
        description="Find the code whose image looks like each given image (GAN inversion): "
        "from the best of 64 random codes (a vae: from its encoder's code), descend on the "
        "pixel error plus the error in the extractor's features. Writes into DIR, per image, "
        "NAME.npy (its code, for `latent interp --from/--to` and `latent arith`) and NAME.png "
        "(its reconstruction); codes.npy, grid.png (originals over reconstructions) and "
        "projection.json (L1, PSNR, the extractor's class of both).",
    )
    project.add_argument("input", metavar="IMAGE|FOLDER", help="an image file or a folder")
    project.add_argument(
        "--out", default="projection", metavar="DIR", help="a new folder (default: projection)"
    )
    project.add_argument(
        "--steps", type=int, default=300, help="descent steps per image (default: 300)"
    )
    project.add_argument(
        "--extractor",
        metavar="NAME|FILE",
        help="the features to match: inception, mnist, fashion-mnist, or a train-extractor "
        "file (default: the run's data's own, as `ganforge eval`)",
    )
    project.add_argument(
        "--inception-weights", metavar="FILE", help="Inception-v3 FID weights file"
    )
    project.add_argument(
        "--seed", type=int, default=0, help="seed of the random codes (default: 0)"
    )
    project.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default: cpu)")
    project.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_truncation_options(parser: argparse.ArgumentParser, effect: str = "") -> None:
    """--truncation PSI and --truncation-mode, for every command that draws noise."""
    parser.add_argument(
        "--truncation",
        type=float,
        metavar="PSI",
        help="the truncation trick: samples nearer the average, better-looking and less varied. "
        "The noise z becomes PSI * z, PSI in (0, 1] (StyleGAN's psi; default: 1, off); with "
        "--truncation-mode resample, PSI is a threshold (>= 0.01): every |z_i| > PSI is drawn "
        f"again, from the same seed, until it falls inside (BigGAN's){effect}",
    )
    parser.add_argument(
        "--truncation-mode",
        metavar="scale|resample",
        help="how --truncation cuts the noise: scale (default) or resample",
    )


def _truncation(args: argparse.Namespace):
    """The sampling.Truncation of --truncation and --truncation-mode (checked: one-line errors)."""
    from ganforge.sampling import NO_TRUNCATION, Truncation

    if args.truncation is None:
        if args.truncation_mode not in (None, "scale"):
            raise GanforgeError(
                f"--truncation-mode {args.truncation_mode}: give the threshold, --truncation PSI"
            )
        return NO_TRUNCATION
    return Truncation(args.truncation, args.truncation_mode or "scale")


def _add_app_command(commands: argparse._SubParsersAction) -> None:
    app = commands.add_parser(
        "app",
        help="a local web page to play with trained runs (pip install 'ganforge[app]')",
        description="Serve a web page to pick a run, browse its samples by seed and class, "
        "interpolate, move along latent directions, translate your images (pix2pix) and read "
        "its report.",
    )
    app.add_argument(
        "runs_dir", metavar="RUNS_DIR", nargs="?", default="runs", help="(default: ./runs)"
    )
    app.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 opens it "
        "to the network)",
    )
    app.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser(
        "data",
        help="inspect or download datasets",
        description="Inspect a dataset or download its official files.",
    )
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    info = actions.add_parser(
        "info",
        help="count, shape, classes and skipped files (and a grid of real images)",
        description="Print a dataset's count, shape, classes and skipped files; with --out, "
        "write a grid of its real images.",
    )
    info.add_argument("data", metavar="NAME|PATH", help="a dataset name or a folder of images")
    info.add_argument("--out", metavar="FILE", help="also write a grid of real images to FILE")
    info.add_argument("--n", type=int, default=64, help="images in the grid (default: 64)")
    info.add_argument(
        "--paired",
        action="store_true",
        help="a folder of image pairs (A|B side by side, or A/ and B/ folders)",
    )
    download = actions.add_parser(
        "download",
        help="fetch a dataset's official files into the data root",
        description="Download and verify a dataset's official files (train and test splits).",
    )
    download.add_argument("data", metavar="NAME", help="a dataset name")
    for action in (info, download):
        action.add_argument("--data-root", metavar="DIR", help="where dataset files live")
    info.add_argument("--trust-pickle", action="store_true", help="allow pickled files")
    for flag, kind, text in (
        ("--resolution", int, "image size (folders: default 64)"),
        ("--channels", int, "1 or 3 (default: the dataset's own)"),
    ):
        info.add_argument(flag, type=kind, help=text)
    info.add_argument("--strict", action="store_true", help="stop at the first unreadable file")


def parse_train_flags(flags: list[str]) -> dict:
    """`ganforge train` flags (["--pack", "2"]) as the options they give ({"pack": 2})."""
    return _train_options(build_parser().parse_args(["train", *flags]))


def _train_options(args: argparse.Namespace) -> dict:
    names = [*shared_option_names(), *option_fields()]
    return {
        name: getattr(args, name, None) for name in names if getattr(args, name, None) is not None
    }


def cmd_train(args: argparse.Namespace) -> None:
    from ganforge import train

    given = _train_options(args)
    if args.resume:
        if args.config:
            raise GanforgeError("--config: a resumed run keeps its own config; drop --config")
        _check_run_size(args.resume)
        run = train(resume=args.resume, **given)
    else:
        options = load_config_file(args.config) if args.config else {}
        options.update(given)
        run = train(options)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return
    print(f"run: {run.path} (step {run.step})")
    print(f"samples: {run.path / 'samples' / 'final.png'}")


def _check_run_size(path: str) -> None:
    """A run whose config.json asks for networks too large is refused naming the file."""
    from ganforge import load_run
    from ganforge.models.registry import check_model_size
    from ganforge.run import CONFIG_FILE

    run = load_run(path)
    config = run.config
    if config.resolution is not None and config.channels is not None:
        try:
            check_model_size(config, config.resolution, config.channels)
        except GanforgeError as exc:
            raise GanforgeError(f"'{run.path / CONFIG_FILE}': {exc}") from None


def cmd_bench(args: argparse.Namespace) -> None:
    from ganforge.training.bench import bench

    options = load_config_file(args.config) if args.config else {}
    options.update(_train_options(args))
    print(bench(options, warmup=args.warmup).report())


def cmd_demo(args: argparse.Namespace) -> None:
    from ganforge import train

    # Measured as it trains (digit-classifier FID on 1,000 samples, about a second each time):
    # the loss curves alone cannot say when the samples are good.
    options = {
        "model": "dcgan",
        "data": "mnist-mini",
        "out": args.out,
        "eval_every": 250,
        "eval_n": 1000,
    }
    if args.steps is not None:
        options["steps"] = args.steps
    started = time.perf_counter()
    run = train(options)
    minutes = (time.perf_counter() - started) / 60
    print(f"demo finished in {minutes:.1f} min. Look at:")
    outputs = [
        (run.path / "samples" / "final.png", "64 digits from the trained generator"),
        (run.path / "loss_curves.png", "losses, D(x), D(G(z)), gradient norms"),
        (run.path / "checkpoints", "safetensors checkpoints (best.safetensors: lowest FID)"),
    ]
    width = max(len(str(path)) for path, _ in outputs)
    for path, what in outputs:
        print(f"  {str(path):<{width}}  {what}")
    print(f"more samples: ganforge sample {run.path} --n 64 --seed 1 --out grid.png")
    evals = [r for r in run.metrics() if "eval_fid" in r]
    if evals:
        best = min(evals, key=lambda r: r["eval_fid"])
        trail = ", ".join(f"{r['eval_fid']:.0f}" for r in evals)
        print(
            f"FID (digit-classifier features, 1,000 samples) every 250 steps: {trail}; "
            f"best at step {best['step']}"
        )
    print(f"full evaluation: ganforge eval {run.path} --n 10000")


def cmd_sample(args: argparse.Namespace) -> None:
    import torch

    from ganforge import load_run
    from ganforge.report import save_images
    from ganforge.sampling import balanced_labels

    run = load_run(args.run)
    if args.class_ is not None and args.classes is not None:
        raise GanforgeError("--class: give --class or --classes, not both")
    check_seed("--seed", args.seed)
    truncation = _truncation(args)
    if run.config.point_dims:
        _sample_points(run, args, truncation)
        return
    if args.classes is not None:
        total = (8 if args.n is None else args.n) * max(1, run.config.num_classes)
    else:
        total = 64 if args.n is None else args.n
    picture = not str(args.out).lower().endswith(".npz")
    run.check_samples("--n", total, picture=picture)  # before any work
    if args.checkpoint:
        run.load(args.checkpoint)
    columns, row_labels = None, None
    if args.classes is not None:
        per_class = 8 if args.n is None else args.n
        images, labels = run.class_grid(
            per_class, seed=args.seed, ema=not args.no_ema, truncation=truncation
        )
        if args.classes != "all":
            keep = run.class_labels(args.classes.split(","))
            rows = torch.cat([torch.nonzero(labels == c).flatten() for c in keep])
            images, labels = images[rows.numpy()], labels[rows]
        columns = per_class
        row_labels = run.class_row_labels(labels, per_class)
    else:
        n = 64 if args.n is None else args.n
        images = run.sample(
            n, seed=args.seed, ema=not args.no_ema, labels=args.class_, truncation=truncation
        )
        labels = None
        if args.class_ is not None:
            labels = run.class_labels(args.class_, n)
        elif run.config.num_classes:  # run.sample drew every class in turn
            labels = balanced_labels(n, run.config.num_classes)
    path = save_images(
        images,
        args.out,
        labels=None if labels is None else labels.numpy(),
        columns=columns,
        extra=_truncation_arrays(truncation),
        row_labels=row_labels,
    )
    print(f"wrote {len(images)} samples to {path}{_truncation_note(truncation)}")


def _truncation_arrays(truncation) -> dict:
    """What a samples .npz records of a truncation: truncation_psi and truncation_mode (absent,
    as in files written before the flag, when the noise was not truncated)."""
    import numpy as np

    record = truncation.record()
    if record is None:
        return {}
    return {"truncation_psi": np.float64(record["psi"]), "truncation_mode": np.str_(record["mode"])}


def _truncation_note(truncation) -> str:
    return f", {truncation}" if truncation.active else ""


def _sample_points(run, args: argparse.Namespace, truncation) -> None:
    """A run of points: `--n` points (default 2,500) to .npz (`points`), .csv or .png."""
    from pathlib import Path

    from ganforge.data import load_points
    from ganforge.evaluate import POINT_SAMPLES
    from ganforge.models.point_gan import FRAME_REAL
    from ganforge.report.lab_frame import save_points

    if args.class_ is not None or args.classes is not None:
        raise GanforgeError(f"--class: run '{run.path}' of points is not class-conditional")
    n = POINT_SAMPLES if args.n is None else args.n
    run.check_samples("--n", n)
    if Path(args.out).suffix.lower() not in (".npz", ".csv", ".png"):
        raise GanforgeError(
            f"--out: '{args.out}' must end in .npz, .csv or .png for a run of points"
        )
    if args.checkpoint:
        run.load(args.checkpoint)
    points = run.sample(n, seed=args.seed, ema=not args.no_ema, truncation=truncation)
    real = None
    if Path(args.out).suffix.lower() == ".png":
        data = load_points(run.config.data, run.config.data_root)
        real = data.points[:FRAME_REAL].numpy()
    path = save_points(points, args.out, real, extra=_truncation_arrays(truncation))
    print(f"wrote {len(points)} points to {path}{_truncation_note(truncation)}")


def cmd_eval(args: argparse.Namespace) -> None:
    from ganforge.evaluate import evaluate_run, format_table, write_eval_file

    check_seed("--seed", args.seed)

    result = evaluate_run(
        args.run,
        n=args.n,
        metrics=args.metrics,
        extractor=args.extractor,
        checkpoint=args.checkpoint,
        ema=not args.no_ema,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        use_cache=not args.no_cache,
        inception_weights=args.inception_weights,
        pairs=args.pairs,
        truncation=_truncation(args),
        write=False,
    )
    print(format_table(result), flush=True)  # first: a read-only run folder loses nothing
    if zoo.is_zoo(args.run):
        print(
            _("{run} ships with ganforge: its eval.json is its card's, left as it is").format(
                run=args.run
            )
        )
        return
    path = write_eval_file(result)
    print(f"wrote {path} ({result['seconds']:.0f} s)")


def cmd_compare(args: argparse.Namespace) -> None:
    from ganforge.compare import compare_runs

    check_seed("--seed", args.seed)
    check_at_most("--n", args.n, MAX_EVAL_SAMPLES)

    result = compare_runs(
        args.runs,
        n=args.n,
        metrics=args.metrics,
        extractor=args.extractor,
        seed=args.seed,
        out=args.out,
        device=args.device,
        progress=not args.no_progress,
    )
    print(result["markdown"])
    files = result["files"]
    print(f"wrote {files['markdown']}, {files['html']}, {files['json']}")


def cmd_latent(args: argparse.Namespace) -> None:
    from ganforge import latent

    if args.latent_command == "recon":
        from ganforge.reconstruction import reconstruct_files

        path, count = reconstruct_files(
            args.run, args.input, args.out, checkpoint=args.checkpoint, ema=not args.no_ema
        )
        print(f"wrote {count} images and their reconstructions to {path}")
        return
    if args.latent_command == "project":
        _project(args)
        return
    if args.latent_command == "codes":
        from ganforge.code_traversal import code_traversal

        path, captions = code_traversal(
            args.run,
            args.out,
            checkpoint=args.checkpoint,
            ema=not args.no_ema,
            seed=args.seed,
            columns=args.columns,
            span=args.span,
        )
        print(f"wrote {path}: {'; '.join(captions)}; a row per category")
        return
    from ganforge.report import save_images

    if args.latent_command == "interp":
        latent.check_frames(args.steps, 1, "--steps")
    elif args.latent_command == "gallery":
        for flag, value in (("--n", args.n), ("--columns", args.columns)):
            if value < 1:
                raise GanforgeError(f"{flag}: must be at least 1, got {value}")
        latent.check_frames(args.n, 1, "--n")
        check_seed("--first", args.first)
        check_seed("--first + --n - 1", args.first + args.n - 1)
    elif args.latent_command == "walk":
        check_seed("--seed", args.seed)
        latent.check_frames(args.keys, args.frames, "--keys x --frames")
    space = latent.LatentSpace.of_run(
        args.run, args.checkpoint, not args.no_ema, args.class_, _truncation(args)
    )
    if args.latent_command == "interp":
        frames = space.interpolate(args.seed_from, args.seed_to, args.steps, args.mode)
        path = latent.save_frames(frames, args.out, ms_per_frame=200)
    elif args.latent_command == "arith":
        if args.out.lower().endswith(".gif"):
            raise GanforgeError(f"--out: arith writes one picture (.png), not '{args.out}'")
        groups = [latent.parse_seeds(getattr(args, g), f"--{g}") for g in "abc"]
        grid, columns, _code = space.arithmetic(*groups)
        row = _("{group}: seeds {seeds}, then their mean")
        row_labels = [row.format(group=g, seeds=getattr(args, g)) for g in "abc"] + ["a - b + c"]
        path = save_images(grid, args.out, columns=columns, row_labels=row_labels)
    elif args.latent_command == "gallery":
        seeds = range(args.first, args.first + args.n)
        path = save_images(
            space.gallery(seeds),
            args.out,
            columns=args.columns,
            cell_labels=[str(seed) for seed in seeds],
        )
    else:
        frames = space.walk(args.keys, args.frames, args.seed)
        path = latent.save_frames(frames, args.out, columns=args.frames)
    print(f"wrote {path}{_truncation_note(space.truncation)}")


def _project(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from ganforge.projection import project_files

    bar = tqdm(desc=_("projecting"), unit="step", disable=args.no_progress, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    with bar:
        out, result, names = project_files(
            args.run,
            args.input,
            args.out,
            steps=args.steps,
            extractor=args.extractor,
            inception_weights=args.inception_weights,
            class_=args.class_,
            seed=args.seed,
            checkpoint=args.checkpoint,
            ema=not args.no_ema,
            device=args.device,
            progress=progress,
        )
    count = len(names)
    said = _("{count} images projected in {seconds:.1f} s ({each:.2f} s each, {steps} steps)")
    print(
        said.format(
            count=count, seconds=result.seconds, each=result.seconds / count, steps=args.steps
        )
    )
    print(
        _("mean L1 {l1:.4f}, mean PSNR {psnr:.2f} dB").format(
            l1=float(result.l1.mean()), psnr=float(result.psnr.mean())
        )
    )
    if result.agreement is not None:
        agreed = int(result.agrees.sum())
        print(
            _(
                "the extractor reads {agreed} of {count} reconstructions as the original's "
                "class ({share:.1%})"
            ).format(agreed=agreed, count=count, share=result.agreement)
        )
    print(
        _(
            "wrote {out}: NAME.npy and NAME.png per image, codes.npy, grid.png, projection.json"
        ).format(out=out)
    )
    first = out / f"{names[0]}.npy"
    print(
        _("walk from it: ganforge latent interp {run} --from {code} --to 7").format(
            run=args.run, code=first
        )
    )


def cmd_metrics(args: argparse.Namespace) -> None:
    from ganforge.metrics import list_extractors

    if args.metrics_command == "extractors":
        for name, text in list_extractors().items():
            print(f"{name:<10} {text}")
        return
    from ganforge.metrics.train_extractor import train_extractor

    if args.epochs < 1 or args.heldout_per_class < 0:
        raise GanforgeError("--epochs must be >= 1 and --heldout-per-class >= 0")
    train_extractor(
        args.data,
        args.out,
        name=args.name,
        epochs=args.epochs,
        heldout_per_class=args.heldout_per_class,
        seed=args.seed,
        data_root=args.data_root,
        resolution=args.resolution,
    )


def cmd_report(args: argparse.Namespace) -> None:
    from ganforge.report.html import build_report

    print(f"wrote {build_report(args.run, args.out)}")


def cmd_doctor(args: argparse.Namespace) -> None:
    from ganforge.run import Run
    from ganforge.training.doctor.explain import explain_run

    run = Run(args.run)
    if not args.trials:
        for flag in ("steps", "jobs", "n", "out"):
            if getattr(args, flag) is not None:
                raise GanforgeError(f"--{flag}: only with --try")
        print(explain_run(run))
        return
    from ganforge.training.doctor.trials import try_remedies

    table = try_remedies(
        run, steps=args.steps, jobs=args.jobs, out=args.out, n=args.n, max_remedies=args.remedies
    )
    print(table.read_text(), end="")
    print(f"wrote {table} and {table.with_suffix('.html')}")


def cmd_app(args: argparse.Namespace) -> None:
    try:
        from ganforge.app.page import serve
    except ImportError as exc:
        raise GanforgeError(
            f"the app needs Gradio ({exc.msg}): pip install 'ganforge[app]'"
        ) from None
    serve(args.runs_dir, host=args.host, port=args.port)


def cmd_models(_: argparse.Namespace) -> None:
    from ganforge.models import list_models

    print("\n".join(list_models()))


def cmd_translate(args: argparse.Namespace) -> None:
    from ganforge.translate import translate_files

    written = translate_files(
        args.run,
        args.input,
        args.out,
        checkpoint=args.checkpoint,
        ema=not args.no_ema,
        device=args.device,
        direction=args.direction,
    )
    print(f"wrote {len(written)} translated images to {args.out}")


def cmd_datasets(_: argparse.Namespace) -> None:
    from ganforge.data import list_datasets

    tags = {"paired": " (image pairs, for pix2pix)", "unpaired": " (two sets, for cyclegan)"}
    tags["points"] = " (points, for mlp)"
    layouts = {name: layout for layout in tags for name in list_datasets(layout=layout)}
    notes = {"stacked-mnist": " (3 digits as RGB: 1,000 modes)"}
    for name in list_datasets():
        print(name + tags.get(layouts.get(name, ""), notes.get(name, "")))
    print("PATH (a folder of images; for pix2pix, of image pairs: A|B side by side, or A/ B/)")
    print("FILE.csv (points, one x,y per row, for mlp)")


def cmd_data(args: argparse.Namespace) -> None:
    from ganforge.data import info

    if args.data_command == "download":
        for path in info.download_dataset(args.data, args.data_root):
            print(path)
        return
    report = info.dataset_info(
        args.data,
        data_root=args.data_root,
        resolution=args.resolution,
        channels=args.channels,
        strict=args.strict,
        trust_pickle=args.trust_pickle,
        paired=args.paired,
        n=args.n,
        out=args.out,
    )
    print(report)


COMMANDS = {
    "train": cmd_train,
    "bench": cmd_bench,
    "demo": cmd_demo,
    "sample": cmd_sample,
    "eval": cmd_eval,
    "compare": cmd_compare,
    "latent": cmd_latent,
    "report": cmd_report,
    "doctor": cmd_doctor,
    "app": cmd_app,
    "translate": cmd_translate,
    "export": cmd_export,
    "metrics": cmd_metrics,
    "models": cmd_models,
    "datasets": cmd_datasets,
    "data": cmd_data,
}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:  # the language and a plugin's models (and their flags) come before the parser
        set_language(_option_value(arguments, "--lang"))
        import_plugin(_option_value(arguments, "--plugin"))
    except GanforgeError as exc:
        print(f"ganforge: error: {exc}", file=sys.stderr)
        return 2
    install_argparse_words()
    if _option_value(arguments, "--plugin") is None:  # a plugin's flags are not everyone's
        remember(_english_parser)  # so that the next --help needs no torch (cli_parser)
    parser = translate_parser(build_parser())
    args, extras = parser.parse_known_args(argv)
    if extras:
        unknown_flags(parser, args, extras)
    try:
        COMMANDS[args.command](args)
    except TrainingStopped as exc:  # a stop the user asked for, done cleanly: not an error
        print(f"ganforge: {exc}", file=sys.stderr)
        return 130
    except (GanforgeError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        message = exc if isinstance(exc, GanforgeError) else describe_os_error(exc)
        print(f"ganforge: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during start-up, an evaluation, a sample: nothing half-written
        if args.debug:
            traceback.print_exc()
        print("ganforge: interrupted", file=sys.stderr)
        return 130
    return 0


def _english_parser() -> argparse.ArgumentParser:
    """The parser with its texts as written (cli_parser keeps its shape in English)."""
    before = current_language()
    set_language("en")
    try:
        return build_parser()
    finally:
        set_language(before)


def describe_os_error(exc: OSError) -> GanforgeError:
    """A disk that is full, a folder that is read-only, a file that vanished: one line naming
    the file (every write is write-then-rename, so nothing is left half-written)."""
    where = f"'{exc.filename}': " if exc.filename is not None else ""
    return GanforgeError(f"{where}{exc.strerror or exc}")


if __name__ == "__main__":
    sys.exit(main())

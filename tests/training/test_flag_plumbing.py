"""Every option of `ganforge train`, given on the command line, reaches the object that uses it.

The flags are read from the parser itself (cli.build_parser): each one must have an entry in
PROBES, which says what to give it, and how to read back, from the live objects the command
built (optimisers' param_groups, the model family, the Trainer's parts, what the run wrote),
the sign that it arrived. A flag added to the parser without an entry fails
test_every_training_flag_has_a_probe; an entry whose probe reads the same with and without
the flag proves nothing and fails too.

Each case runs `ganforge train ...` through cli.main with Trainer.fit replaced by a stand-in
that keeps the built Trainer; probes that need steps run the real fit on it (a few steps of a
tiny mlp on `digits`).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.training.evaluation as evaluation
from ganforge import cli, i18n
from ganforge.errors import GanforgeError
from ganforge.metrics import inception
from ganforge.models.cyclegan import ResidualBlock
from ganforge.models.layers import Maxout, MinibatchStd
from ganforge.models.mlp import MLPGenerator
from ganforge.models.r3gan import ResidualBlock as R3GANBlock
from ganforge.run import CONFIG_FILE, Run
from ganforge.training import distributed, loop
from ganforge.training import setup as trainer_setup

ORIGINAL_FIT = loop.Trainer.fit

# Options every case starts from (a tiny mlp on digits, 4 steps, one final checkpoint, no
# records, grids or bars of its own); a case's flag comes after them, so it wins.
COMMON = (
    ("--model", "mlp"),
    ("--data", "digits"),
    ("--width", "8"),
    ("--batch-size", "16"),
    ("--z-dim", "8"),
    ("--steps", "4"),
    ("--log-every", "100"),
    ("--checkpoint-every", "100"),
    ("--sample-every", "100"),
    ("--n-grid", "4"),
    ("--no-progress",),
    ("--device", "cpu"),
)

# Options of `ganforge train` that are not training state, so have no object to land in.
NOT_TRAINING_STATE = {
    "--help": "prints the help and exits",
}


def train_parser():
    commands = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return commands.choices["train"]


def flag_of(action) -> str:
    return next(s for s in action.option_strings if s.startswith("--"))


TRAIN_FLAGS = [flag_of(a) for a in train_parser()._actions if a.option_strings]


# ---- running `ganforge train` up to the built Trainer ------------------------------------------


@dataclass
class Workspace:
    root: Path
    out: Path  # this invocation's --out


@dataclass
class Built:
    """What one `ganforge train` invocation built (or the one-line error it stopped with)."""

    trainer: loop.Trainer | None = None
    error: str = ""
    processes: int | None = None  # --ddp: how many training processes were started
    calls: dict = field(default_factory=dict)  # what spies saw
    _run: Run | None = None

    def fitted(self) -> Run:
        """The run after the real training loop ran on the built Trainer."""
        if self._run is None:
            self._run = ORIGINAL_FIT(self.trainer)
        return self._run


def invoke(argv: list[str], monkeypatch, setup=None) -> Built:
    built = Built()

    def keep_trainer(self):
        built.trainer = self
        return Run(self.run_dir)

    def start_processes(worker, args, nprocs, start_method):
        # stands in for the --ddp workers: records how many, writes the run's config as rank 0
        built.processes = nprocs
        config, run_dir = args[2], Path(args[3])
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CONFIG_FILE).write_text(json.dumps(config))

    opened = trainer_setup.open_dataset

    def open_dataset(*args, **kwargs):
        built.calls.setdefault("open_dataset", kwargs)  # the training set: the first call
        return opened(*args, **kwargs)

    monkeypatch.setattr(loop.Trainer, "fit", keep_trainer)
    monkeypatch.setattr(distributed.mp, "start_processes", start_processes)
    monkeypatch.setattr(trainer_setup, "open_dataset", open_dataset)
    if setup is not None:
        setup(monkeypatch, built.calls)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["train", *argv])
    if code != 0:
        built.error = err.getvalue().strip()
        assert built.error.count("\n") == 0, built.error  # errors are one line
    return built


# ---- probes: read the sign of a flag from what was built ---------------------------------------


def final_lr_scale(b: Built) -> float:
    """G's learning rate after the run's last iteration, over the configured one."""
    b.fitted()
    return round(b.trainer.optimizers["generator"].param_groups[0]["lr"] / b.trainer.config.lr_g, 6)


def optimizer_group(network: str, key: str, index: int | None = None):
    def probe(b: Built):
        value = b.trainer.optimizers[network].param_groups[0][key]
        return value if index is None else value[index]

    return probe


def both_optimizers(key: str, index: int):
    """The same hyper-parameter read from G's and D's optimisers."""
    generator = optimizer_group("generator", key, index)
    discriminator = optimizer_group("discriminator", key, index)
    return lambda b: (generator(b), discriminator(b))


def family(attribute: str):
    return lambda b: getattr(b.trainer.family, attribute)


def network(name: str):
    return lambda b: b.trainer.family.networks[name]


def modules(b: Built, name: str) -> list[torch.nn.Module]:
    return list(b.trainer.family.networks[name].modules())


def widths(b: Built, name: str) -> list[int]:
    return [m.out_features for m in modules(b, name) if isinstance(m, torch.nn.Linear)]


def has(b: Built, name: str, layer: type, count: bool = False):
    found = sum(isinstance(m, layer) for m in modules(b, name))
    return found if count else found > 0


def detector(name: str, option: str):
    """The value a doctor detector reads for `option` (each holds the config it judges by)."""

    def probe(b: Built):
        found = {type(d).__name__: d for d in b.trainer.state.doctor.detectors}
        return getattr(found[name].config, option)

    return probe


def real_batch(b: Built) -> torch.Tensor:
    return b.trainer._next_batch()["images"]


def generated(b: Built) -> torch.Tensor:
    fam = b.trainer.family
    with torch.no_grad():
        return fam.generate(fam.sample_latent(2))


def function_name(f) -> str:
    return getattr(f, "func", f).__name__  # a smoothed loss is a functools.partial


def largest_weight(b: Built, name: str) -> float:
    """The largest |weight| of network `name` after the run's steps."""
    b.fitted()
    return max(p.abs().max().item() for p in b.trainer.family.networks[name].parameters())


def replayed(b: Built) -> int:
    """How many earlier fakes the family's replay pool holds after the run (0: no pool)."""
    b.fitted()
    pool = b.trainer.family.replay
    return 0 if pool is None else len(pool)


def checkpoint_steps(b: Built) -> list[int]:
    return [step for step, _ in b.fitted().checkpoints]


def record_steps(b: Built) -> list[int]:
    return [r["step"] for r in b.fitted().metrics() if "loss_d" in r]


def eval_steps(b: Built) -> list[int]:
    return [r["step"] for r in b.fitted().metrics() if "eval_fid" in r]


def grid_names(b: Built) -> list[str]:
    return sorted(p.name for p in (b.fitted().path / "samples").glob("step_*.png"))


def phase_counts(b: Built) -> dict[str, int]:
    """How many times each phase ran in one iteration."""
    fam, counts = b.trainer.family, {}
    original = fam.phase_loss

    def counting(phase, batch):
        counts[phase] = counts.get(phase, 0) + 1
        return original(phase, batch)

    fam.phase_loss = counting
    b.trainer._iteration(log_now=False)
    return counts


def generator_passes(b: Built) -> int:
    """How many forward passes G made in one iteration."""
    passes = []
    handle = b.trainer.family.networks["generator"].register_forward_hook(
        lambda *_: passes.append(1)
    )
    b.trainer._iteration(log_now=False)
    handle.remove()
    return len(passes)


def gradient_norm_keys(b: Built) -> int:
    return len(b.trainer._iteration(log_now=True))


def learning_rate_after_a_rollback(b: Built) -> float:
    state = b.trainer.state
    state.doctor.snapshot(*state.contents())
    tensors, meta = state.doctor.roll_back("a probe", 1)
    state.load(tensors, meta, position=False)
    return state.optimizers["generator"].param_groups[0]["lr"]


def rollbacks_allowed(b: Built) -> int:
    doctor = b.trainer.state.doctor
    doctor.snapshot(*b.trainer.state.contents())
    for count in range(10):
        try:
            doctor.roll_back("a probe", 1)
        except GanforgeError:
            return count
    return 10


def initialised_from_seed(seed: int):
    def probe(b: Built):
        torch.manual_seed(seed)
        reference = MLPGenerator(z_dim=8, output_shape=(1, 28, 28), width=8)
        mine = b.trainer.family.networks["generator"].state_dict()
        return b.trainer.state.batches.seed, all(
            torch.equal(mine[k], v) for k, v in reference.state_dict().items()
        )

    return probe


def evaluate_once(b: Built) -> dict:
    t = b.trainer
    t.state.evaluator.evaluate(t.family, t.sampling_network(), 1)
    return b.calls


def progress_shown(b: Built) -> tuple[bool, bool]:
    """Whether the data loader may show a progress bar, and whether the training bar is off."""
    b.fitted()
    return b.calls["open_dataset"]["options"].progress, b.calls["bar_disabled"]


def error_says(text: str):
    return lambda b: text in b.error


# ---- setups: spies and stand-ins some probes need ----------------------------------------------


def stub_measurement(values: Callable[[], float] | None = None):
    """measure_generator records what it was asked for and answers at once."""

    def setup(monkeypatch, calls):
        def measure(family, network, reference, groups, *, n, **kwargs):
            calls.update(groups=list(groups), n=n)
            value = values() if values is not None else 1.0
            return {"fid": value, "kid": value}

        monkeypatch.setattr(evaluation, "measure_generator", measure)

    return setup


def getting_worse(monkeypatch, calls):
    values = iter(range(1, 100))
    stub_measurement(lambda: float(next(values)))(monkeypatch, calls)


def slow_clock(monkeypatch, calls):
    """A minute passes every time the loop reads its clock."""
    now = {"t": 0.0}

    def monotonic():
        now["t"] += 60.0
        return now["t"]

    clock = types.SimpleNamespace(monotonic=monotonic, perf_counter=time.perf_counter)
    monkeypatch.setattr(loop, "time", clock)


def spy_grids(monkeypatch, calls):
    saved = loop.save_images

    def save_images(images, path, **kwargs):
        calls.setdefault("grid_sizes", []).append(len(images))
        return saved(images, path, **kwargs)

    monkeypatch.setattr(loop, "save_images", save_images)


def grid_size(b: Built) -> int:
    b.trainer._save_grid("probe.png")
    return b.calls["grid_sizes"][-1]


def spy_bar(monkeypatch, calls):
    bar = loop.tqdm

    def tqdm(*args, **kwargs):
        calls["bar_disabled"] = kwargs.get("disable")
        return bar(*args, **kwargs)

    monkeypatch.setattr(loop, "tqdm", tqdm)


def fake_compile(monkeypatch, calls):
    """torch.compile that hands the function back (compiling takes seconds; test_fast_paths
    compares a compiled run with an eager one)."""
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)


def offline_inception(monkeypatch, calls):
    """No Inception weights besides a given file: none cached (an empty cache, whatever earlier
    tests of the session converted), packaged or downloaded."""
    monkeypatch.setenv("GANFORGE_CACHE", tempfile.mkdtemp(prefix="no-inception-"))
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: None)


# ---- values that need files --------------------------------------------------------------------


def image_folder(ws: Workspace, broken: bool = False) -> str:
    """20 random 8x8 grayscale PNGs (and, with `broken`, a file that is not an image)."""
    folder = ws.root / ("broken-folder" if broken else "folder")
    if not folder.is_dir():
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(20):
            pixels = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:02d}.png")
        if broken:
            (folder / "broken.png").write_bytes(b"not a png")
    return str(folder)


def options_file(ws: Workspace) -> str:
    path = ws.root / "options.toml"
    path.write_text("lr_d = 0.003\n")
    return str(path)


def earlier_run(ws: Workspace) -> str:
    """A run of the COMMON options stopped at step 2, to resume in ws.out."""
    argv = [item for pair in COMMON for item in pair] + ["--steps", "2", "--out", str(ws.out)]
    assert cli.main(["train", *argv]) == 0
    return str(ws.out)


def another_folder(ws: Workspace) -> str:
    return str(ws.root / "elsewhere")


def named_file(name: str):
    return lambda ws: str(ws.root / name)


def unused_device() -> str:
    return "cpu" if torch.cuda.is_available() else "cuda"


def device_probe(b: Built):
    if b.error:
        return "CUDA was asked for" in b.error
    return b.trainer.device.type


# ---- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """`value` (None for a switch; a callable of the Workspace for a path) is given to the flag
    after COMMON + `base`; `read(built)` must then equal `expected`, and differ without it."""

    value: Any
    read: Callable[[Built], Any]
    expected: Any
    base: tuple = ()
    setup: Callable | None = None


PIX2PIX = ("--model", "pix2pix", "--data", "mnist-mini-edges", "--resolution", "32")
CYCLEGAN = ("--model", "cyclegan", "--data", "mnist-mini-edges-unpaired", "--resolution", "32")
INFOGAN = ("--model", "infogan", "--data", "mnist-mini", "--width", "8")
R3GAN = ("--model", "r3gan")
FOLDER = ("--data", image_folder, "--resolution", "8")
EVAL = ("--eval-every", "4")
DDP = ("--ddp",)


def r3gan_block(built: Built) -> R3GANBlock:
    """G's first residual block (r3gan)."""
    return next(m for m in modules(built, "generator") if isinstance(m, R3GANBlock))


def packed_inputs(built: Built) -> tuple[int, float]:
    """The family's pack, and D's inputs in samples of G."""
    sample_size = np.prod(network("generator")(built).output_shape)
    first = network("discriminator")(built).net[1].in_features
    return family("remedies")(built).pack, first / sample_size


PROBES: dict[str, Probe] = {
    "--config": Probe(options_file, optimizer_group("discriminator", "lr"), 0.003),
    "--resume": Probe(earlier_run, lambda b: b.trainer.state.step, 2),
    # ---- data
    "--model": Probe("dcgan", lambda b: type(network("generator")(b)).__name__, "DCGANGenerator"),
    "--data": Probe("mnist-mini", lambda b: len(b.trainer.real_batches), 5000),
    "--data-root": Probe(
        named_file("datasets"),
        lambda b: Path(b.calls["open_dataset"]["options"].data_root or "").name,
        "datasets",
    ),
    "--data-cache": Probe("stream", lambda b: b.trainer.real_batches.streaming, True, FOLDER),
    "--data-workers": Probe(
        "0", lambda b: b.trainer.real_batches.workers, 0, (*FOLDER, "--data-cache", "stream")
    ),
    "--hflip": Probe(None, lambda b: b.trainer.real_batches.hflip, True),
    "--strict": Probe(
        None,
        error_says("broken.png"),
        True,
        ("--data", lambda ws: image_folder(ws, broken=True), "--resolution", "8"),
    ),
    "--trust-pickle": Probe(None, lambda b: b.calls["open_dataset"]["options"].trust_pickle, True),
    "--resolution": Probe(
        "16", lambda b: (real_batch(b).shape[-1], generated(b).shape[-1]), (16, 16)
    ),
    "--channels": Probe("3", lambda b: (real_batch(b).shape[1], generated(b).shape[1]), (3, 3)),
    # ---- the loop
    "--steps": Probe("3", lambda b: b.fitted().step, 3),
    "--batch-size": Probe("8", lambda b: real_batch(b).shape[0], 8),
    "--seed": Probe("7", initialised_from_seed(7), (7, True)),
    "--out": Probe(another_folder, lambda b: b.trainer.run_dir.name, "elsewhere"),
    "--lr-g": Probe("0.003", optimizer_group("generator", "lr"), 0.003),
    "--lr-d": Probe("0.005", optimizer_group("discriminator", "lr"), 0.005),
    "--beta1": Probe("0.1", both_optimizers("betas", 0), (0.1, 0.1)),
    "--beta2": Probe("0.9", both_optimizers("betas", 1), (0.9, 0.9)),
    "--optimizer": Probe(
        "rmsprop",
        lambda b: sorted((name, type(o).__name__) for name, o in b.trainer.optimizers.items()),
        [("discriminator", "RMSprop"), ("generator", "RMSprop")],
    ),
    "--d-steps": Probe("3", phase_counts, {"discriminator": 3, "generator": 1}),
    # the last of 4 iterations: 1 - 3/4 of the rate; 4/8 of it, half-way through a warm-up
    "--lr-decay": Probe("linear", final_lr_scale, 0.25),
    "--lr-warmup": Probe("8", final_lr_scale, 0.5),
    # batches drawn by the run's 4 iterations: --accumulate of them for each update of D
    "--accumulate": Probe(
        "3", lambda b: b.fitted() and b.trainer.state.batches.position["batch"], 12
    ),
    # D's phase draws the fakes, G's phase learns from them: one pass of G, not two
    "--reuse-fakes": Probe(None, generator_passes, 1),
    "--g-loss": Probe("saturating", lambda b: family("g_loss")(b).__name__, "g_saturating"),
    "--z-dim": Probe("5", lambda b: network("generator")(b).net[0].in_features, 5),
    "--width": Probe("4", lambda b: network("generator")(b).net[0].out_features, 4 * 4),
    "--label-smoothing": Probe("0.25", family("real_label"), 0.75),
    "--ema-decay": Probe("0.5", lambda b: b.trainer.state.averages["generator"].decay, 0.5),
    "--ema": Probe("0.25", lambda b: b.trainer.state.averages["generator"].decay, 0.25),
    # ---- conditional models, pix2pix, vae
    "--num-classes": Probe(
        "12",
        lambda b: (family("num_classes")(b), network("generator")(b).num_classes),
        (12, 12),
        ("--model", "cgan"),
    ),
    "--cond": Probe(
        "projection",
        lambda b: type(network("discriminator")(b)).__name__,
        "ProjectionDiscriminator",
        ("--model", "cgan"),
    ),
    "--aux-weight": Probe("0.5", family("aux_weight"), 0.5, ("--model", "acgan")),
    "--aux-fakes": Probe(None, family("aux_fakes"), True, ("--model", "acgan")),
    "--l1-weight": Probe("10", family("l1_weight"), 10.0, PIX2PIX),
    "--norm": Probe(
        "instance",
        lambda b: any(isinstance(m, torch.nn.InstanceNorm2d) for m in modules(b, "generator")),
        True,
        PIX2PIX,
    ),
    "--recon": Probe("mse", family("recon"), "mse", ("--model", "vae")),
    # ---- a model's own architecture (mlp, dcgan) and a user's module of models
    "--g-layers": Probe("12,20", lambda b: widths(b, "generator")[:2], [12, 20]),
    "--d-layers": Probe("24", lambda b: widths(b, "discriminator"), [24, 1]),
    "--g-activation": Probe("elu", lambda b: has(b, "generator", torch.nn.ELU), True),
    "--d-activation": Probe("silu", lambda b: has(b, "discriminator", torch.nn.SiLU), True),
    "--g-norm": Probe("layer", lambda b: has(b, "generator", torch.nn.LayerNorm), True),
    # each hidden unit of D is the largest of 3 pieces: a linear layer 3 times as wide
    "--d-maxout": Probe(
        "3",
        lambda b: [
            (m.pieces, m.linear.out_features)
            for m in modules(b, "discriminator")
            if isinstance(m, Maxout)
        ][:1],
        [(3, 3 * 64)],
    ),
    "--extra-layers": Probe(
        "2", lambda b: has(b, "generator", torch.nn.Conv2d, count=True), 2, ("--model", "dcgan")
    ),
    "--plugin": Probe("json", lambda b: b.trainer.config.plugin, "json"),
    # ---- cyclegan
    "--cycle-weight": Probe("3", family("cycle_weight"), 3.0, CYCLEGAN),
    "--identity-weight": Probe("0.25", family("identity_weight"), 0.25, CYCLEGAN),
    "--image-pool": Probe("7", lambda b: network("discriminator")(b).pool_a.size, 7, CYCLEGAN),
    "--res-blocks": Probe(
        "2", lambda b: has(b, "generator", ResidualBlock, count=True), 4, CYCLEGAN
    ),
    "--beta": Probe("0.5", family("beta"), 0.5, ("--model", "vae")),
    # ---- r3gan: 3 stages at 28 px; G's first block is 4 x --width (8) = 32 channels wide
    "--blocks-per-stage": Probe(
        "2", lambda b: has(b, "generator", R3GANBlock, count=True), 6, R3GAN
    ),
    "--expansion": Probe("3", lambda b: r3gan_block(b).conv.in_channels, 3 * 32, R3GAN),
    "--group-channels": Probe("4", lambda b: r3gan_block(b).conv.groups, 2 * 32 // 4, R3GAN),
    # infogan: G's input holds the noise (--z-dim 8), the one-hot category and the codes
    "--categories": Probe(
        "4", lambda b: network("generator")(b).net[0].in_channels, 8 + 4 + 2, INFOGAN
    ),
    "--continuous-codes": Probe(
        "5", lambda b: network("generator")(b).net[0].in_channels, 8 + 10 + 5, INFOGAN
    ),
    "--info-weight": Probe("0.25", family("info_weight"), 0.25, INFOGAN),
    # D's first convolution has D's base width, G's last hidden layer keeps --width (8)
    "--d-width": Probe(
        "4",
        lambda b: (
            network("discriminator")(b).net[0].out_channels,
            network("generator")(b).net[-2].in_channels,
        ),
        (4, 8),
        ("--model", "dcgan"),
    ),
    # ---- remedies
    "--loss": Probe(
        "hinge",
        lambda b: (function_name(family("d_loss")(b)), function_name(family("g_loss")(b))),
        ("d_hinge", "g_hinge"),
    ),
    "--gp": Probe("10", lambda b: b.trainer.family.remedies.gp, 10.0),
    "--r1": Probe("2", lambda b: b.trainer.family.remedies.r1, 2.0),
    "--spectral-norm": Probe(
        None,
        lambda b: any(hasattr(m, "parametrizations") for m in modules(b, "discriminator")),
        True,
    ),
    "--instance-noise": Probe("0.1", family("noise_std"), 0.1),
    # D's first layer takes two of G's samples at once
    "--pack": Probe("2", lambda b: packed_inputs(b), (2, 2.0)),
    "--feature-matching": Probe(None, lambda b: family("remedies")(b).feature_matching, True),
    "--minibatch-std": Probe(None, lambda b: has(b, "discriminator", MinibatchStd), True),
    # G's loss looks ahead at D's own optimiser's steps
    "--unroll": Probe(
        "2",
        lambda b: (
            family("remedies")(b).unroll,
            family("d_optimizer")(b) is b.trainer.optimizers["discriminator"],
        ),
        (2, True),
    ),
    "--r2": Probe("3", lambda b: b.trainer.family.remedies.r2, 3.0),
    # the penalty weight's share at the run's last step (cosine over --steps 4, from step 3)
    "--reg-decay": Probe(
        "cosine",
        lambda b: round(b.fitted() and b.trainer.family.reg_factor, 4),
        0.2318,
        ("--r1", "1"),
    ),
    "--reg-final": Probe(
        "0.5",
        lambda b: b.trainer.family.remedies.reg_final,
        0.5,
        ("--r1", "1", "--reg-decay", "cosine"),
    ),
    "--reg-every": Probe("4", lambda b: b.trainer.family.remedies.reg_every, 4, ("--r1", "1")),
    # D's weights after its steps
    "--clip-weights": Probe(
        "0.001",
        lambda b: round(largest_weight(b, "discriminator"), 6),
        0.001,
        ("--loss", "wasserstein"),
    ),
    "--replay": Probe("20", lambda b: replayed(b), 20),
    "--ada": Probe("0.6", lambda b: getattr(b.trainer.family.ada, "target", None), 0.6),
    "--ada-kimg": Probe("7", lambda b: b.trainer.family.ada.kimg, 7.0, ("--ada", "0.6")),
    "--diffaugment": Probe(
        "translation", lambda b: b.trainer.family.remedies.diffaugment, ("translation",)
    ),
    # ---- checkpoints, records, grids
    "--checkpoint-every": Probe("2", checkpoint_steps, [2, 4]),
    "--checkpoint-minutes": Probe("1", checkpoint_steps, [2, 3, 4], setup=slow_clock),
    "--keep-checkpoints": Probe("1", checkpoint_steps, [4], ("--checkpoint-every", "1")),
    "--sample-every": Probe("2", grid_names, ["step_0000002.png", "step_0000004.png"]),
    "--log-every": Probe("2", record_steps, [2, 4]),
    "--n-grid": Probe("9", grid_size, 9, setup=spy_grids),
    # ---- evaluation
    "--eval-every": Probe("2", eval_steps, [2, 4], setup=stub_measurement()),
    "--eval-metric": Probe(
        "kid", lambda b: evaluate_once(b)["groups"], ["kid"], EVAL, stub_measurement()
    ),
    "--eval-n": Probe("30", lambda b: evaluate_once(b)["n"], 30, EVAL, stub_measurement()),
    "--early-stop-patience": Probe(
        "2", lambda b: b.fitted().step, 3, ("--eval-every", "1", "--steps", "10"), getting_worse
    ),
    "--extractor": Probe(
        "fashion-mnist",
        lambda b: b.trainer.state.evaluator.reference.extractor.name,
        "fashion-mnist",
        EVAL,
    ),
    "--inception-weights": Probe(
        named_file("missing.safetensors"),
        error_says("--inception-weights: no file"),
        True,
        (*EVAL, "--extractor", "inception"),
        offline_inception,
    ),
    # ---- speed and scale
    "--device": Probe(unused_device(), device_probe, "cpu" if torch.cuda.is_available() else True),
    "--compile": Probe(
        None,
        lambda b: sorted(b.trainer.compiled),
        ["discriminator", "generator"],
        setup=fake_compile,
    ),
    "--precision": Probe("bf16", lambda b: b.trainer.state.precision.dtype, torch.bfloat16),
    "--ddp": Probe(None, lambda b: b.processes, distributed.CPU_PROCESSES),
    "--nproc-per-node": Probe("4", lambda b: b.processes, 4, DDP),
    "--sync-bn": Probe(
        None, error_says("--sync-bn: PyTorch's SyncBatchNorm runs on GPUs only"), True, DDP
    ),
    "--no-progress": Probe(
        None,
        progress_shown,
        (False, True),
        setup=spy_bar,
    ),
    "--tensorboard": Probe(None, lambda b: type(b.trainer.tensorboard).__name__, "TensorBoardLog"),
    # the language the doctor speaks in while this run trains (its events, the banner, errors)
    "--lang": Probe("es", lambda b: i18n.current_language(), "es"),
    # ---- the doctor
    "--no-doctor": Probe(None, lambda b: b.trainer.state.doctor is None, True),
    "--diagnose-layers": Probe(None, lambda b: gradient_norm_keys(b) > 2, True),
    "--nan-lr-factor": Probe("0.25", learning_rate_after_a_rollback, pytest.approx(4e-4 * 0.25)),
    "--max-rollbacks": Probe("1", rollbacks_allowed, 1),
    "--doctor-warmup": Probe("7", detector("DOverpowering", "doctor_warmup"), 7),
    "--doctor-patience": Probe("2", detector("GOverpowering", "doctor_patience"), 2),
    "--doctor-repeat": Probe("3", lambda b: b.trainer.state.doctor.config.doctor_repeat, 3),
    "--doctor-window": Probe("8", detector("Oscillation", "doctor_window"), 8),
    "--doctor-explode-factor": Probe("3", detector("Exploding", "doctor_explode_factor"), 3.0),
    "--doctor-vanish-factor": Probe("0.2", detector("Vanishing", "doctor_vanish_factor"), 0.2),
    "--doctor-vanish-accuracy": Probe("0.9", detector("Vanishing", "doctor_vanish_accuracy"), 0.9),
    "--doctor-d-accuracy": Probe("0.9", detector("DOverpowering", "doctor_d_accuracy"), 0.9),
    "--doctor-g-accuracy": Probe("0.4", detector("GOverpowering", "doctor_g_accuracy"), 0.4),
    "--doctor-g-d-fake": Probe("0.7", detector("GOverpowering", "doctor_g_d_fake"), 0.7),
    "--doctor-diversity": Probe("0.3", detector("ModeCollapse", "doctor_diversity"), 0.3),
    "--doctor-collapse-kl": Probe("0.8", detector("ClassCollapse", "doctor_collapse_kl"), 0.8),
    "--doctor-oscillation-growth": Probe(
        "3", detector("Oscillation", "doctor_oscillation_growth"), 3.0
    ),
    "--doctor-swing": Probe("0.3", detector("Oscillation", "doctor_swing"), 0.3),
    "--doctor-stall-evals": Probe("2", detector("Stalled", "doctor_stall_evals"), 2),
}


def test_every_training_flag_has_a_probe():
    flags = set(TRAIN_FLAGS)
    assert set(NOT_TRAINING_STATE) <= flags
    missing = sorted(flags - set(NOT_TRAINING_STATE) - set(PROBES))
    stale = sorted(set(PROBES) - flags)
    assert not missing, f"flags without a probe in PROBES: {missing}"
    assert not stale, f"probes of flags the parser no longer has: {stale}"


def _argv(flag: str, spec: Probe, ws: Workspace, given: bool) -> list[str]:
    dropped = {"--no-progress", "--device"} & {flag}  # the case's own flag is not in COMMON
    argv = [item for pair in COMMON if pair[0] not in dropped for item in pair]
    argv += [item(ws) if callable(item) else item for item in spec.base]
    argv += ["--out", str(ws.out)]
    if given:
        argv.append(flag)
        if spec.value is not None:
            argv.append(spec.value(ws) if callable(spec.value) else spec.value)
    return argv


def _read(spec: Probe, built: Built):
    if built.trainer is None and not built.error and built.processes is None:
        raise AssertionError("`ganforge train` built nothing")
    try:
        return spec.read(built)
    except AttributeError:
        if built.error:  # it stopped where the probe expected a Trainer: say why
            raise AssertionError(built.error) from None
        raise


@pytest.mark.parametrize("flag", [f for f in TRAIN_FLAGS if f not in NOT_TRAINING_STATE])
def test_the_flag_reaches_the_object_that_uses_it(flag, tmp_path, monkeypatch):
    assert flag in PROBES, f"{flag}: add a probe of where it lands to PROBES"
    spec = PROBES[flag]
    given_ws = Workspace(tmp_path, tmp_path / "given")
    given = invoke(_argv(flag, spec, given_ws, given=True), monkeypatch, spec.setup)
    assert _read(spec, given) == spec.expected, given.error
    monkeypatch.undo()
    default = invoke(
        _argv(flag, spec, Workspace(tmp_path, tmp_path / "default"), given=False),
        monkeypatch,
        spec.setup,
    )
    assert _read(spec, default) != spec.expected, f"{flag}: the probe reads the same without it"

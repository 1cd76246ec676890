"""Using a trained translator (pix2pix): translate image files, and measure it against
held-out targets (L1, PSNR, SSIM).

`ganforge translate RUN INPUT --out DIR` and `ganforge eval RUN` on a translator call this.
Inputs are read like a folder of training images (center-cropped to a square, resized to the
run's resolution, converted to its channels); every input is decoded before anything is
written, so a bad file stops the command with nothing changed on disk.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ganforge.atomic import atomic_path
from ganforge.config import TrainConfig
from ganforge.data import (
    ImageDataset,
    LoadOptions,
    layout_for,
    list_datasets,
    open_dataset,
    to_model_range,
    to_uint8,
)
from ganforge.data.inputs import image_files, read_images
from ganforge.errors import GanforgeError
from ganforge.metrics.catalog import (
    MetricInputs,
    get_metric,
    list_groups,
    list_metrics,
    measure,
)
from ganforge.models import ModelFamily, model_kind
from ganforge.modules import device_of, eval_mode
from ganforge.run import Run

BATCH_SIZE = 64


def load_translator(
    run: str | Path | Run, checkpoint: str | Path | None = None, ema: bool = True
) -> tuple[Run, ModelFamily, nn.Module]:
    """A translator run, its family and its sampling network (eval mode, CPU); an error for a
    run whose model does not translate images."""
    run = run if isinstance(run, Run) else Run(run)
    family = run.load(checkpoint)
    if not family.kind.translator:
        raise GanforgeError(
            f"run '{run.path}' is a {run.config.model} run, which does not translate images "
            "(that takes a translator such as pix2pix); draw samples with `ganforge sample`"
        )
    return run, family, run.generator(ema)


def translate_images(
    family: ModelFamily,
    network: nn.Module,
    sources: torch.Tensor,
    batch_size: int = BATCH_SIZE,
    direction: str = "a2b",
) -> torch.Tensor:
    """uint8 (N, C, H, W) sources -> uint8 (N, C, H, W) translations (on the CPU) in one of
    the family's `directions`, in eval mode on `network`'s device."""
    device = device_of(network)
    outputs = []
    with eval_mode(network):
        for chunk in sources.split(batch_size):
            images = family.translate(network, to_model_range(chunk).to(device), direction)
            outputs.append(to_uint8(images).cpu())
    return torch.cat(outputs)


def translate_files(
    run: str | Path | Run,
    inputs: str | Path,
    out: str | Path,
    *,
    checkpoint: str | Path | None = None,
    ema: bool = True,
    device: str = "cpu",
    direction: str = "a2b",
) -> list[Path]:
    """Translate an image file, or every image file in a folder (at any depth), into PNGs in
    `out` with the same relative names (suffix .png), in `direction` (a2b: the way the model
    was trained; b2a: back, for a model that learns both ways). Returns the files written."""
    run, family, network = load_translator(run, checkpoint, ema)
    if direction not in family.directions:
        raise GanforgeError(
            f"--direction: a {run.config.model} run translates {', '.join(family.directions)}, "
            f"not {direction}"
        )
    inputs, out = Path(inputs), Path(out)
    if out.exists() and not out.is_dir():
        raise GanforgeError(f"--out: '{out}' is a file, not a folder")
    config = run.config
    files = _input_files(inputs, out)
    _refuse_overwriting_inputs(files, out)
    sources = read_images([file for file, _ in files], config.resolution, config.channels)
    outputs = translate_images(family, network.to(device), sources, direction=direction)
    written = []
    for (_, name), image in zip(files, outputs):
        written.append(_write_png(out / name, image))
    return written


def _input_files(inputs: Path, out: Path) -> list[tuple[Path, Path]]:
    """(input file, output name relative to `out`) for every image to translate."""
    if inputs.is_file():
        return [(inputs, Path(inputs.stem + ".png"))]
    found: dict[Path, Path] = {}
    for file in image_files(inputs, leave_out=out):  # not earlier outputs inside the folder
        name = file.relative_to(inputs).with_suffix(".png")
        if name in found:
            raise GanforgeError(
                f"INPUT: '{found[name]}' and '{file}' would both be written to '{out / name}'"
            )
        found[name] = file
    return [(file, name) for name, file in found.items()]


def _refuse_overwriting_inputs(files: list[tuple[Path, Path]], out: Path) -> None:
    """An output never replaces an input (`--out` the folder of `photo.png` would write
    `photo.png`): the same file, however it is named (links too), is refused."""
    inputs: dict[tuple[int, int], Path] = {}
    for file, _ in files:
        with contextlib.suppress(OSError):
            info = file.stat()
            inputs[(info.st_dev, info.st_ino)] = file
    for _, name in files:
        target = out / name
        try:
            info = target.stat()
        except OSError:  # not there yet
            continue
        source = inputs.get((info.st_dev, info.st_ino))
        if source is not None:
            raise GanforgeError(
                f"--out: writing '{target}' would overwrite the input '{source}'; choose "
                "another --out"
            )


def _write_png(path: Path, image: torch.Tensor) -> Path:
    pixels = image.permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    try:
        with atomic_path(path) as tmp:
            picture.save(tmp, format="PNG")
    except OSError as exc:
        raise GanforgeError(f"--out: cannot write '{path}': {exc.strerror or exc}") from None
    return path


# ---- evaluation on held-out pairs -----------------------------------------------------------


def held_out_pairs(
    config: TrainConfig, pairs: str | Path | None = None
) -> tuple[ImageDataset, str]:
    """The pairs to measure a translator on, at the run's resolution and channels, and what
    they are: `pairs` (a folder of pairs, or a paired dataset's "test" split), else the test
    split of the run's registered dataset (paired, or unpaired with its held-out pairs
    aligned). A folder run needs `pairs`."""
    name = str(pairs) if pairs is not None else config.data
    layout = "paired" if pairs is not None else _layout(config)
    if pairs is None and config.data not in list_datasets(layout=layout):
        raise GanforgeError(
            f"--pairs: run's data '{config.data}' has no held-out split; give --pairs FOLDER "
            "of image pairs it was not trained on"
        )
    dataset = open_dataset(
        name,
        resolution=config.resolution,
        channels=config.channels,
        options=LoadOptions(config.data_root, split="test", trust_pickle=config.trust_pickle),
        layout=layout,
    )
    held = f"{name} (test split)" if name in list_datasets(layout=layout) else name
    return dataset, held


def _layout(config: TrainConfig) -> str:
    """The layout of the run's data (paired or unpaired translation)."""
    return layout_for(model_kind(config.model).data)


def evaluate_translation(
    run: str | Path | Run,
    *,
    pairs: str | Path | None = None,
    n: int | None = None,
    checkpoint: str | Path | None = None,
    ema: bool = True,
    device: str = "cpu",
) -> dict:
    """L1, PSNR and SSIM of a translator's outputs against the targets of held-out pairs (the
    first `n`, or all), on images in [0, 1] as written to PNG; also the same measures of the
    sources themselves, as a do-nothing baseline. (`ganforge eval` writes it to eval.json.)"""
    started = time.perf_counter()
    run, family, network = load_translator(run, checkpoint, ema)
    dataset, held = held_out_pairs(run.config, pairs)
    count = len(dataset) if n is None else min(n, len(dataset))
    if count < 1:
        raise GanforgeError(f"--n: need at least 1 pair, got {n}")
    sources, targets = dataset.sources[:count], dataset.images[:count]
    values = translation_scores(family, network.to(device), sources, targets)
    result = {
        "run": str(run.path),
        "task": "translation",
        "step": checkpoint_step(run, checkpoint),
        "checkpoint": str(checkpoint) if checkpoint else "newest",
        "ema": ema and run.has_ema,
        "pairs": held,
        "n_pairs": count,
        "metrics": values,
        "source_as_output": _mean_scores(sources, targets),
        "notes": [
            "images in [0, 1] after 8-bit rounding; PSNR in dB (peak 1), the mean over pairs; "
            "SSIM: 11x11 Gaussian window, sigma 1.5, per channel"
        ],
        "seconds": round(time.perf_counter() - started, 2),
    }
    return result


def translation_scores(
    family: ModelFamily, network: nn.Module, sources: torch.Tensor, targets: torch.Tensor
) -> dict[str, float]:
    """Mean L1, PSNR and SSIM of `network`'s translations of uint8 `sources` against uint8
    `targets` (NCHW), after 8-bit rounding as in the PNGs it writes."""
    return _mean_scores(translate_images(family, network, sources), targets)


def training_pairs_reference(config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out pairs --eval-every measures a translator on (uint8 sources and targets,
    the first --eval-n), for a translator or a
    translation metric; a clear error when the model, the metric or the data does not allow
    it (a noise model with l1, a translator with fid, a folder without held-out pairs)."""
    translator = model_kind(config.model).translator
    if translator != ("pairs" in get_metric(config.eval_metric).needs):
        names = ", ".join(m.name for m in list_metrics(trackable=True) if "pairs" in m.needs)
        wanted = f"one of {names}" if translator else f"a metric of samples, not {names}"
        raise GanforgeError(f"--eval-metric: {config.model} is measured by {wanted}")
    if config.data not in list_datasets(layout=_layout(config)):
        raise GanforgeError(
            f"--eval-every: data '{config.data}' has no held-out pairs to measure on; train "
            "without it and run `ganforge eval RUN --pairs FOLDER`"
        )
    dataset, _ = held_out_pairs(config)
    return dataset.sources[: config.eval_n], dataset.images[: config.eval_n]


def _mean_scores(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    groups = [group.name for group in list_groups() if "pairs" in group.needs]
    return measure(groups, MetricInputs(outputs=outputs, targets=targets))


def checkpoint_step(run: Run, checkpoint: str | Path | None) -> int:
    """The training step of `checkpoint` (None or "newest": the run's newest)."""
    if checkpoint is None or str(checkpoint) == "newest":
        return run.step
    from ganforge.training.checkpoint import load_checkpoint

    _, meta = load_checkpoint(run.checkpoint_path(checkpoint))
    return int(meta.get("step", 0))


def format_translation_table(result: dict) -> str:
    """A translator's evaluation as plain text: the model's scores beside the do-nothing
    baseline (the source as the output)."""
    model = "EMA" if result["ema"] else "raw"
    lines = [
        f"{result['run']} at step {result['step']} ({model} translator)",
        f"{result['n_pairs']} held-out pairs of {result['pairs']}",
        "",
        f"  {'':<9}  {'model':>8}  {'source':>8}",
    ]
    for metric in list_metrics():
        if metric.name in result["metrics"]:
            ours, baseline = result["metrics"][metric.name], result["source_as_output"][metric.name]
            lines.append(
                f"  {metric.label:<9}  {ours:>8.4f}  {baseline:>8.4f}  {metric.description}"
            )
    return "\n".join([*lines, "", *result["notes"]])

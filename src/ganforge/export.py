"""A trained generator outside training: the sampling network alone (its EMA copy where the run
kept one, in eval mode, with its conditional input) as ONNX, as TorchScript, or as a Hub-style
folder (model.safetensors, config.json, a model card README.md) that `ganforge.load_generator`
and every ganforge tool read like a run, without the training code.

The exported network maps z (N, z_dim) float32 [and labels (N,) int64 for a class-conditional
model], or sources (N, C, H, W) in [-1, 1] for a translator, to images (N, C, H, W) float32 in
[-1, 1] (points (N, D) for a run of points), for any batch size N. Each export is checked
against torch on fresh inputs of another batch size, and the largest difference is reported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ganforge import __version__
from ganforge.atomic import atomic_folder
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.run import CONFIG_FILE, EXPORTED_WEIGHTS, Run

FORMATS = ("onnx", "torchscript", "folder")
CARD = "README.md"
FILES = {"onnx": "generator.onnx", "torchscript": "generator.pt"}
CHECK_BATCH = 3  # the check's batch differs from the example's: the batch size is dynamic
EXAMPLE_BATCH = 2
TOLERANCE = 1e-4  # the largest difference from torch an export may show
EXTRA = "pip install 'ganforge[export]'"


class Sampler(nn.Module):
    """The sampling network with its family's sample(): what an export holds."""

    def __init__(self, family, network: nn.Module):
        super().__init__()
        self.family, self.network = family, network.eval()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        kind = self.family.kind
        if kind.translator:
            return self.family.sample(self.network, None, inputs[0])
        return self.family.sample(self.network, *inputs)


@dataclass
class Exported:
    """What export() wrote: the file or folder, and the largest difference from torch."""

    path: Path
    format: str
    max_abs_difference: float

    def __str__(self) -> str:
        return (
            f"wrote {self.path} ({self.format}); largest difference from torch on new inputs: "
            f"{self.max_abs_difference:.2e}"
        )


def input_names(family) -> list[str]:
    kind = family.kind
    if kind.translator:
        return ["sources"]
    return ["z", "labels"] if kind.class_conditional else ["z"]


def example_inputs(run: Run, family, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Inputs for `n` samples: seeded noise (and labels), or seeded source images in [-1, 1]
    (a translator: any image of its shape is a valid input, trained on pairs or on folders)."""
    generator = torch.Generator().manual_seed(seed)
    kind = family.kind
    if kind.translator:
        size, channels = run.config.resolution, run.config.channels
        return (torch.rand(n, channels, size, size, generator=generator) * 2 - 1,)
    z = family.sample_latent(n, generator=generator)
    if kind.class_conditional:
        return z, torch.arange(n) % max(1, family.num_classes)
    return (z,)


def export(
    run: Run | str | Path,
    fmt: str,
    out: str | Path,
    checkpoint: str | None = None,
    ema: bool = True,
) -> Exported:
    """Export `run`'s sampling network as `fmt` (onnx, torchscript or folder) into the new (or
    empty) folder `out`, checked against torch; nothing is written where it would replace a
    file."""
    run = run if isinstance(run, Run) else Run(run)
    if fmt not in FORMATS:
        raise GanforgeError(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanforgeError(f"--out: '{out}' exists and is not an empty folder")
    family = run.load(checkpoint)
    sampler = Sampler(family, run.generator(ema))
    with atomic_folder(out) as partial:
        with torch.no_grad():
            if fmt == "folder":
                difference = _folder(run, family, sampler, partial, checkpoint)
            else:
                difference = _network_file(run, family, sampler, fmt, partial)
        if difference > TOLERANCE:
            raise GanforgeError(
                f"export: the {fmt} network differs from torch by {difference:.2e} "
                f"(more than {TOLERANCE:g}); nothing was written"
            )
    path = out if fmt == "folder" else out / FILES[fmt]
    return Exported(path, fmt, difference)


def _network_file(run: Run, family, sampler: Sampler, fmt: str, folder: Path) -> float:
    example = example_inputs(run, family, EXAMPLE_BATCH, seed=0)
    check = example_inputs(run, family, CHECK_BATCH, seed=1)
    expected = sampler(*check).numpy()
    path = folder / FILES[fmt]
    if fmt == "torchscript":
        traced = torch.jit.trace(sampler, example, check_trace=False)
        traced.save(str(path))
        got = torch.jit.load(str(path))(*check).numpy()
    else:
        got = _onnx(sampler, family, example, check, path)
    return float(np.abs(got - expected).max())


def _onnx(sampler, family, example, check, path: Path) -> np.ndarray:
    try:
        import onnxruntime
    except ImportError:
        raise GanforgeError(
            f"--format onnx needs onnx, onnxscript and onnxruntime: {EXTRA}"
        ) from None
    names = input_names(family)
    batch = torch.export.Dim("batch")
    try:
        torch.onnx.export(
            sampler,
            example,
            str(path),
            input_names=names,
            output_names=["points" if family.kind.data == "points" else "images"],
            dynamic_shapes={"inputs": tuple({0: batch} for _ in names)},  # forward(*inputs)
            dynamo=True,
            verbose=False,
        )
    except ImportError as exc:
        raise GanforgeError(f"--format onnx: {exc} ({EXTRA})") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in zip(names, check)}
    return session.run(None, feeds)[0]


def _folder(run: Run, family, sampler: Sampler, folder: Path, checkpoint: str | None) -> float:
    """model.safetensors (the sampling network's weights), config.json (the run's), README.md;
    checked by loading it back as a run and sampling the same images."""
    weights = {k: v.detach().contiguous() for k, v in sampler.network.state_dict().items()}
    metadata = {"ganforge": __version__, "network": family.sampler, "format": "generator"}
    save_file(weights, str(folder / EXPORTED_WEIGHTS), metadata=metadata)
    shutil.copyfile(run.path / CONFIG_FILE, folder / CONFIG_FILE)
    (folder / CARD).write_text(model_card(run, family, checkpoint), encoding="utf-8")
    check = example_inputs(run, family, CHECK_BATCH, seed=1)
    back = Run(folder)
    again = Sampler(back.load(), back.generator())
    return float(np.abs(again(*check).numpy() - sampler(*check).numpy()).max())


def train_command(config: TrainConfig) -> str:
    """`ganforge train` with the flags where `config` differs from its model's defaults (the
    options a reader types; values the data decides, as class names, are left out)."""
    import argparse

    from ganforge.cli import build_parser
    from ganforge.models.registry import model_defaults

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    flags = {a.dest: a for a in commands.choices["train"]._actions if a.option_strings}
    defaults = {**TrainConfig(model=config.model).to_dict(), **model_defaults(config.model)}
    words = ["ganforge", "train", "--model", config.model]
    for name, value in config.to_dict().items():
        action = flags.get(name)
        if action is None or name in ("model", "out", "progress") or value == defaults.get(name):
            continue
        if action.nargs == 0:  # a switch
            words += [action.option_strings[0]] if value == action.const else []
            continue
        words += [action.option_strings[0], str(value)]
    return " ".join(words)


def model_card(run: Run, family, checkpoint: str | None) -> str:
    """The folder's README.md: what the model is, how to use it, how it was made and measured."""
    config = run.config
    kind = family.kind
    text = json.dumps(config.to_dict(), sort_keys=True)
    if kind.translator:
        inputs = f"`sources` (N, {config.channels}, {config.resolution}, {config.resolution}) "
        inputs += "float32 in [-1, 1]"
    else:
        width = int(family.sample_latent(1).shape[1])
        inputs = f"`z` (N, {width}) float32, standard normal"
        if kind.class_conditional:
            names = ", ".join(config.class_names[:10])
            inputs += f"; `labels` (N,) int64, a class index ({names})"
    output = (
        f"points (N, {config.point_dims}) float32"
        if config.point_dims
        else f"`images` (N, {config.channels}, {config.resolution}, {config.resolution}) float32 "
        "in [-1, 1]"
    )
    lines = [
        f"# ganforge {config.model} on {config.data}",
        "",
        f"A generator trained by ganforge {__version__}: `{config.model}` on `{config.data}`, "
        f"{run.step:,} of {config.steps:,} steps (checkpoint: {checkpoint or 'newest'}), "
        f"{config.resolution} px, {config.channels} channel(s). The weights are its sampling "
        f"network's{' EMA copy' if run.has_ema else ''}, in eval mode.",
        "",
        "## Use",
        "",
        "```bash",
        "ganforge sample THIS_FOLDER --n 64 --out grid.png",
        "```",
        "",
        "```python",
        "import ganforge",
        'generator = ganforge.load_generator("THIS_FOLDER")',
        "images = generator.sample(16, seed=0)   # uint8 (16, H, W, C)",
        "```",
        "",
        f"Inputs: {inputs}. Output: {output}.",
        "",
        "## How it was made",
        "",
        "```bash",
        train_command(config),
        "```",
        "",
        f"Config SHA-256: `{hashlib.sha256(text.encode()).hexdigest()}` (of its sorted JSON); "
        f"trajectory hash `{config.trajectory_hash()}`.",
        "",
        "## Evaluation",
        "",
        *_evaluation_lines(run),
        "",
        "## License",
        "",
        "The weights: MIT, as ganforge. The training data keeps its own terms.",
        "",
    ]
    return "\n".join(lines)


def _evaluation_lines(run: Run) -> list[str]:
    """The run's last `ganforge eval` (RUN/eval.json) as a table, or how to get one."""
    path = run.path / "eval.json"
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        metrics = result.get("metrics", {})
        rows = [
            f"| {name} | {value:.4g} |"
            for name, value in metrics.items()
            if isinstance(value, (int, float))
        ]
    except (OSError, ValueError, AttributeError):
        rows = []
    if not rows:
        return [f"Not evaluated yet: `ganforge eval {run.path}` measures it."]
    settings = {
        k: v
        for k, v in result.items()
        if k not in ("metrics", "run", "notes", "seconds") and not isinstance(v, (dict, list))
    }
    said = ", ".join(f"{k} {v}" for k, v in settings.items())
    return [
        f"From `ganforge eval` ({said}):" if said else "From `ganforge eval`:",
        "",
        "| metric | value |",
        "|---|---|",
        *rows,
    ]

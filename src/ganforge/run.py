"""A run folder, readable without the training code: config.json + safetensors checkpoints.

RUN/config.json          the full resolved config
RUN/metrics.jsonl        one JSON record every --log-every steps
RUN/events.jsonl         problems the doctor found (training/doctor/), one per line
RUN/checkpoints/         step_0000500.safetensors ... (the newest --keep-checkpoints), and
                         best.safetensors (the best by --eval-metric, with --eval-every)
RUN/eval.json            the last `ganforge eval` result
RUN/eval_truncation_MODE_PSI.json   the last `ganforge eval --truncation PSI` result
RUN/samples/             step_0000250.png ... grids of the same fixed noise; final.png
RUN/loss_curves.png      losses, D outputs, gradient norms, D accuracy, diversity, gp/r1, metric
RUN/tensorboard/         with --tensorboard: TensorBoard event files (records' numbers, sample
                         grids, weight and gradient histograms)
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torch import nn

from ganforge import bounds, zoo
from ganforge.checkpoint_file import (
    expected_tensors,
    list_checkpoints,
    load_checkpoint,
    load_newest_valid,
    unpack_module,
)
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily, build_model
from ganforge.models.registry import describe_model
from ganforge.records import read_records
from ganforge.report.grid import image_grid
from ganforge.report.labels import labelled_grid
from ganforge.report.plots import curve_panels, curves_image, run_panels
from ganforge.sampling import Truncation, as_truncation, class_rows, generate

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
EXPORTED_WEIGHTS = "model.safetensors"  # a folder of `ganforge export --format folder`
CURVES_FILE = "loss_curves.png"
TENSORBOARD_DIR = "tensorboard"
EMA_SUFFIX = "_ema"
BEST_CHECKPOINT = "best.safetensors"
PILImage = PIL.Image.Image


class Run:
    """A trained (or training) run on disk."""

    def __init__(self, path: str | Path):
        """`path`: a run folder, an exported folder, or `zoo:NAME` (a generator that ships)."""
        self.path = zoo.resolve(path)
        config_file = self.path / CONFIG_FILE
        if not config_file.is_file():
            raise GanforgeError(f"'{self.path}' is not a ganforge run (no {CONFIG_FILE})")
        try:
            values = json.loads(config_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, OSError) as exc:
            raise GanforgeError(f"'{config_file}' is not valid JSON: {exc}") from None
        if not isinstance(values, dict):
            raise GanforgeError(f"'{config_file}' must hold a JSON object of options")
        try:
            self.config = TrainConfig.from_dict(values, source=str(config_file))
        except GanforgeError as exc:  # "--lr-g: ..." alone would not say where it came from
            message = str(exc)
            raise GanforgeError(
                message if str(config_file) in message else f"'{config_file}': {message}"
            ) from None
        self._family: ModelFamily | None = None

    def __repr__(self) -> str:
        return f"Run('{self.path}', model={self.config.model}, step={self.step})"

    def show(
        self,
        what: str = "samples",
        n: int | None = None,
        seed: int = 0,
        columns: int | None = None,
        panels: Sequence[str] | None = None,
        title: str | None = None,
    ) -> PILImage:
        """A picture of the run as a PIL image, which a notebook shows inline (or `.save()`).

        what="samples": a grid of `n` samples of `seed`, `columns` wide (default: square), the
        grid `ganforge sample RUN --n N --seed S --out grid.png` writes (a run of points: its
        `n` points over the real ones, as `--out points.png` draws them); `n` defaults to 64.
        what="classes": a class-conditional run's rows, one per class with its name on the left,
        `n` samples each (default 8), column j from the same noise in every row: the picture of
        `ganforge sample RUN --classes all --n N --seed S --out rows.png`. what="curves": the
        training curves of metrics.jsonl as RUN/loss_curves.png draws them, or only the
        `panels` named by their English titles ("Losses", "Discriminator outputs",
        "Gradient norms", ...), under `title` (default "MODEL on DATA"; "" for none); titles
        in the current language (ganforge.set_language).
        """
        if what == "classes":
            per_class = 8 if n is None else n
            images, labels = self.class_grid(per_class, seed=seed)
            return labelled_grid(images, per_class, self.class_row_labels(labels, per_class))
        n = 64 if n is None else n
        if what == "samples" and self.config.point_dims:
            return PIL.Image.fromarray(self._points_frame(self.sample(n, seed=seed)))
        if what == "samples":
            grid = image_grid(self.sample(n, seed=seed), columns=columns)
            return PIL.Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
        if what == "curves":
            return self._curves_image(panels, title)
        raise GanforgeError(f"show: what='samples', 'classes' or 'curves', not {what!r}")

    def _points_frame(self, points: np.ndarray) -> np.ndarray:
        """A run of points drawn over its real points, as `ganforge sample RUN --out
        points.png` draws them."""
        from ganforge.data import load_points
        from ganforge.models.point_gan import FRAME_REAL
        from ganforge.report.lab_frame import draw_lab_frame, view_of

        real = load_points(self.config.data, self.config.data_root).points[:FRAME_REAL].numpy()
        return draw_lab_frame(real, points, view_of(real))

    def _curves_image(self, panels: Sequence[str] | None, title: str | None) -> PILImage:
        records = self.metrics()
        drawn = [title for title, _ in curve_panels(records, self._panels())]
        if not drawn:
            raise GanforgeError(f"run '{self.path}' has no curves to show yet ({METRICS_FILE})")
        unknown = [name for name in panels or () if name not in drawn]
        if unknown:
            raise GanforgeError(
                f"show: no curve panel {unknown[0]!r} (this run's: {', '.join(drawn)})"
            )
        chosen = tuple(p for p in self._panels() if panels is None or p[0] in panels)
        if panels is not None:  # in the order asked for
            chosen = tuple(sorted(chosen, key=lambda panel: list(panels).index(panel[0])))
        if title is None:
            title = f"{self.config.model} on {self.config.data}"
        return curves_image(records, chosen, title)

    def _panels(self):
        """The run's curve panels (report.plots.run_panels), from its config alone."""
        return run_panels(describe_model(self.config))

    def _repr_png_(self) -> bytes | None:
        """Jupyter shows a run by its samples (64, seed 0); a translator by its newest progress
        picture (rows of source | output | target); a run without a checkpoint by its text
        alone."""
        from ganforge.models import run_kind

        if not (self.checkpoints or self.exported) or self.config.point_dims:
            return None
        if run_kind(self.config).translator:
            pictures = sorted((self.path / SAMPLES_DIR).glob("step_*.png"))
            final = self.path / SAMPLES_DIR / "final.png"
            newest = final if final.is_file() else (pictures[-1] if pictures else None)
            return newest.read_bytes() if newest is not None else None
        buffer = io.BytesIO()
        self.show("samples").save(buffer, format="png")
        return buffer.getvalue()

    @property
    def checkpoints(self) -> list[tuple[int, Path]]:
        return list_checkpoints(self.path / CHECKPOINT_DIR)

    @property
    def step(self) -> int:
        """The step of the newest checkpoint (0 if none)."""
        found = self.checkpoints
        return found[-1][0] if found else 0

    def metrics(self) -> list[dict]:
        """The records of metrics.jsonl; lines torn by a crash or garbled on disk are left out."""
        return read_records(self.path / METRICS_FILE)

    def events(self) -> list[dict]:
        """The doctor's events (docs/reference/diagnosis): step, event, evidence, remedies."""
        return read_records(self.path / EVENTS_FILE)

    def checkpoint_path(self, checkpoint: str | Path) -> Path:
        """A checkpoint file: "best", "newest", a file name in RUN/checkpoints/, or a path."""
        if str(checkpoint) == "best":
            path = self.path / CHECKPOINT_DIR / BEST_CHECKPOINT
            if not path.is_file():
                raise GanforgeError(
                    f"--checkpoint best: run '{self.path}' has no best checkpoint "
                    "(train with --eval-every N to keep one)"
                )
            return path
        inside = self.path / CHECKPOINT_DIR / str(checkpoint)
        return inside if not Path(checkpoint).exists() and inside.is_file() else Path(checkpoint)

    @property
    def has_ema(self) -> bool:
        family = self._family or self.load()
        return family.sampler + EMA_SUFFIX in family.networks

    def load(self, checkpoint: str | Path | None = None) -> ModelFamily:
        """The model family with the weights of `checkpoint` (default: the newest; "best": the
        best by the in-training evaluation), on CPU."""
        if checkpoint is not None and str(checkpoint) == "newest":
            checkpoint = None
        if checkpoint is None and not self.checkpoints and self.exported:
            return self._load_exported()
        if checkpoint is None and not self.checkpoints:
            raise GanforgeError(f"run '{self.path}' has no checkpoint yet")
        path = None if checkpoint is None else self.checkpoint_path(checkpoint)
        with torch.random.fork_rng(devices=[]):  # random init, overwritten: leave the RNG be
            try:
                family = build_model(self.config, self.config.resolution, self.config.channels)
            except GanforgeError as exc:  # too large: say which file asked for it
                raise GanforgeError(f"'{self.path / CONFIG_FILE}': {exc}") from None
        # the file's tensors are checked against these shapes before any is read
        config_file = self.path / CONFIG_FILE
        networks = dict(family.networks.items())
        for name in family.averaged:  # an EMA copy is shaped as its network
            networks[name + EMA_SUFFIX] = family.networks[name]
        expected = expected_tensors(networks)
        if path is None:
            path, tensors, _ = load_newest_valid(
                self.path / CHECKPOINT_DIR, expected=expected, config_file=config_file
            )
        else:
            tensors, _ = load_checkpoint(path, expected, config_file)
        for name, network in family.networks.items():
            unpack_module(f"networks.{name}", network, tensors, path, config_file)
        for name in family.averaged:  # the EMA copies, where the run kept them
            ema_key = f"networks.{name}{EMA_SUFFIX}"
            if any(k.startswith(ema_key + ".") for k in tensors):
                ema_network = copy.deepcopy(family.networks[name])
                unpack_module(ema_key, ema_network, tensors, path, config_file)
                family.networks[name + EMA_SUFFIX] = ema_network
        self._family = family
        return family

    @property
    def exported(self) -> bool:
        """An exported folder (`ganforge export --format folder`): the sampling network's
        weights in model.safetensors beside config.json, no checkpoints."""
        return (self.path / EXPORTED_WEIGHTS).is_file()

    def _load_exported(self) -> ModelFamily:
        """The family with the exported sampling network's weights (the other networks, which
        an export leaves out, keep their initial ones: only sampling is meant)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.path / EXPORTED_WEIGHTS
        with torch.random.fork_rng(devices=[]):
            family = build_model(self.config, self.config.resolution, self.config.channels)
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise GanforgeError(f"'{path}' is not a readable safetensors file: {exc}") from None
        prefixed = {f"networks.{family.sampler}.{k}": v for k, v in tensors.items()}
        network = family.networks[family.sampler]
        unpack_module(
            f"networks.{family.sampler}", network, prefixed, path, self.path / CONFIG_FILE
        )
        if not all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point()):
            raise GanforgeError(f"'{path}' holds a NaN or infinite weight")
        self._family = family
        return family

    def generator(self, ema: bool = True) -> nn.Module:
        """The sampling network in eval mode (its EMA copy when the run kept one)."""
        family = self._family or self.load()
        name = family.sampler + EMA_SUFFIX
        network = (
            family.networks[name]
            if ema and name in family.networks
            else family.networks[family.sampler]
        )
        return network.eval()

    def sample(
        self,
        n: int = 64,
        seed: int = 0,
        ema: bool = True,
        labels=None,
        truncation: float | Truncation | None = None,
    ) -> np.ndarray:
        """`n` images as uint8 (N, H, W, C); the same seed gives the same images. A
        class-conditional run draws `labels` (one class for all, or one per sample; names or
        indices; default: every class in turn). `truncation`: psi in (0, 1] scales the noise
        towards its mean (1: off), or a sampling.Truncation (the resample mode;
        docs/reference/latent-space)."""
        truncation = as_truncation(truncation)
        if n < 1:
            raise GanforgeError(f"--n: must be at least 1, got {n}")
        self.check_samples("--n", n)
        family = self._family or self.load()
        if labels is not None:
            labels = self.class_labels(labels, n)
        network = self.generator(ema)
        return generate(family, network, n, seed, labels=labels, truncation=truncation)

    def check_samples(self, flag: str, n: int, picture: bool = False) -> None:
        """`n` samples at once are refused, naming `flag`, beyond ganforge.bounds."""
        config = self.config
        bounds.check_samples(
            flag,
            n,
            z_dim=config.z_dim,
            resolution=config.resolution,
            channels=config.channels,
            picture=picture,
        )

    def class_labels(self, classes, n: int | None = None) -> torch.Tensor:
        """Class indices for class names or indices (a single one repeated `n` times)."""
        names = self.config.class_names
        if not names:
            raise GanforgeError(
                f"--class: run '{self.path}' ({self.config.model}) is not class-conditional"
            )
        items = [classes] if isinstance(classes, (str, int)) else list(classes)
        indices = [self._class_index(item, names) for item in items]
        if n is not None and len(indices) == 1:
            indices = indices * n
        return torch.tensor(indices, dtype=torch.int64)

    @staticmethod
    def _class_index(item, names: list[str]) -> int:
        if str(item) in names:
            return names.index(str(item))
        if isinstance(item, int) or str(item).isdigit():
            if 0 <= int(item) < len(names):
                return int(item)
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise GanforgeError(f"--class: '{item}' is not a class of this run ({shown})")

    def class_grid(
        self,
        per_class: int = 8,
        seed: int = 0,
        ema: bool = True,
        truncation: float | Truncation | None = None,
    ):
        """One row per class, `per_class` samples each, column j from the same noise in every
        row: uint8 images (C * per_class, H, W, C) and their labels. `truncation` as `sample`."""
        truncation = as_truncation(truncation)
        if per_class < 1:
            raise GanforgeError(f"--n: must be at least 1, got {per_class}")
        self.check_samples("--n", per_class * max(1, self.config.num_classes))
        family = self._family or self.load()
        if not family.kind.class_conditional:
            raise GanforgeError(
                f"--classes: run '{self.path}' ({self.config.model}) is not class-conditional"
            )
        return class_rows(family, self.generator(ema), per_class, seed, truncation)

    def class_row_labels(self, labels: torch.Tensor, per_class: int) -> list[str]:
        """The class name of each row of a class grid (`class_grid`'s labels)."""
        return [self.config.class_names[int(c)] for c in labels[::per_class]]


def load_run(path: str | Path) -> Run:
    return Run(path)


def load_generator(path: str | Path) -> Run:
    """A generator to sample from, loaded: a folder of `ganforge export --format folder`
    (model.safetensors, config.json; no checkpoints, no training code) or a run folder.
    `.sample(n, seed)`, `.show()`, `.generator()` as for any run."""
    run = Run(path)
    run.load()
    return run


def torch_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanforgeError(
            f"--device: '{name}' is not a device (auto, cpu, cuda, cuda:N)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanforgeError("--device: CUDA was asked for but no GPU is available")
    return device

"""TensorBoard event files for `--tensorboard`: the records' scalars, the sample grids and the
networks' weight and gradient histograms, in RUN/tensorboard/ (`tensorboard --logdir RUN`).

metrics.jsonl stays the run's record; this is a view of it for people who already live in
TensorBoard. It needs the optional `tensorboard` package (pip install 'ganforge[tensorboard]'),
which writes the files through torch.utils.tensorboard and also shows them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganforge.errors import GanforgeError

# Scalar tags are "group/key": TensorBoard shows one section per group. First match wins.
SCALAR_GROUPS = (
    ("loss_", "losses"),
    ("d_", "discriminator"),
    ("grad_norm_", "gradient_norms"),
    ("weight_norm_", "weight_norms"),
    ("diversity", "doctor"),
    ("eval_", "evaluation"),
    ("gp", "penalties"),
    ("r1", "penalties"),
)
HISTOGRAM_BINS = 64  # TensorBoard redraws any histogram in 30 buckets
_FLUSH_SECONDS = 10  # a TensorBoard watching a live run sees it this late at most


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a metrics.jsonl key: loss_d -> losses/loss_d."""
    group = next((group for prefix, group in SCALAR_GROUPS if key.startswith(prefix)), "training")
    return f"{group}/{key}"


def record_scalars(record: dict) -> dict[str, float]:
    """The numbers of a metrics.jsonl record, by key, less its step and its flags (partial,
    eval_best)."""
    return {
        key: float(value)
        for key, value in record.items()
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def histograms(tensors: dict[str, torch.Tensor], bins: int = HISTOGRAM_BINS) -> dict[str, dict]:
    """TensorBoard histograms (add_histogram_raw's arguments) of the finite tensors among
    `tensors`: min, max, count, sum, sum of squares and `bins` equal-width buckets, measured
    where the tensors are (all on one device) and read in two host syncs. (add_histogram
    sorts every value on the CPU in float64: several times slower, and a GPU run waits.)"""
    flat = {tag: t.float().flatten() for tag, t in tensors.items() if t.numel()}
    if not flat:
        return {}
    finite = torch.stack([values.isfinite().all() for values in flat.values()]).tolist()
    flat = {tag: values for (tag, values), ok in zip(flat.items(), finite) if ok}
    if not flat:
        return {}
    summaries = [
        torch.cat(
            [torch.stack([v.min(), v.max(), v.sum(), v.square().sum()]), torch.histc(v, bins)]
        )
        for v in flat.values()
    ]
    found = {}
    for (tag, values), summary in zip(flat.items(), torch.stack(summaries).cpu()):
        low, high, total, squares, *counts = summary.tolist()
        if low == high:  # histc spreads a constant over [low - 1, high + 1]: one bucket
            limits, counts = [high], [float(values.numel())]
        else:
            limits = [low + (high - low) * (i + 1) / bins for i in range(bins)]
        found[tag] = {
            "min": low,
            "max": high,
            "num": values.numel(),
            "sum": total,
            "sum_squares": squares,
            "bucket_limits": limits,
            "bucket_counts": counts,
        }
    return found


class TensorBoardLog:
    """The training loop's TensorBoard writer: `start` once the run folder is settled, then
    `record`, `scalars` and `samples` as the loop writes them, and `close`."""

    def __init__(self, folder: Path):
        """Fails at once (before the data is read) when the package is missing."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GanforgeError(
                "--tensorboard: needs the tensorboard package: pip install 'ganforge[tensorboard]'"
            ) from None
        self.folder = folder
        self._writer_class = SummaryWriter
        self._writer = None

    def start(self, step: int) -> None:
        """Open a new event file for training that goes on from `step`. Events after `step`
        left by an earlier attempt (a crash, a resume from an older checkpoint) are purged by
        TensorBoard, as metrics.jsonl drops its records after the checkpoint."""
        self._writer = self._writer_class(
            str(self.folder), purge_step=step + 1, flush_secs=_FLUSH_SECONDS
        )

    def record(self, record: dict, networks: nn.ModuleDict) -> None:
        """A training record's scalars, and every parameter's weights and gradient (the last
        update's) as histograms, at the record's step."""
        self.scalars(record)
        tensors = {}
        for name, network in networks.items():
            for key, parameter in network.named_parameters():
                tensors[f"weights/{name}/{key}"] = parameter.detach()
                if parameter.grad is not None:
                    tensors[f"gradients/{name}/{key}"] = parameter.grad.detach()
        for tag, histogram in histograms(tensors).items():
            self._writer.add_histogram_raw(tag, global_step=record["step"], **histogram)

    def scalars(self, record: dict) -> None:
        """A record's numbers (a training record's, or an evaluation's eval_* metrics)."""
        for key, value in record_scalars(record).items():
            self._writer.add_scalar(scalar_tag(key), value, record["step"])

    def samples(self, path: Path, step: int) -> None:
        """The sample grid just saved at `path` (the same picture, as RGB)."""
        with Image.open(path) as picture:
            grid = np.asarray(picture.convert("RGB"))
        self._writer.add_image("samples", grid, step, dataformats="HWC")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

"""Statistics gathered as tensors during steps and read out (one host sync) every N steps.

Records fall on multiples of --log-every. A run that ends (or is interrupted) between two of
them writes a last record marked `"partial": true`; its pending sums are also saved in the
checkpoint, so a resumed run drops that record and writes exactly the records an
uninterrupted run would have written.

In a data-parallel run every process keeps its own sums; `reduce` (an all-reduce mean over
processes) turns them into the global batch's when a record is written or a checkpoint
packed, and only rank 0 has a `path` to write to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ganforge.atomic import atomic_path
from ganforge.errors import GanforgeError
from ganforge.records import parse_record, read_metrics_file, record_lines

WALL_CLOCK_FIELDS = ("images_per_s", "elapsed_s")  # the only fields that differ between reruns
_PENDING_PREFIX = "logbook."


class Logbook:
    def __init__(
        self,
        path: Path | None,
        reduce: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    ):
        self.path = path  # None: a process that does not write (not rank 0)
        self.reduce = reduce or (lambda sums: sums)
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._images = 0
        self._since = time.perf_counter()
        self.started = time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            self._sums[key] = self._sums[key] + value if key in self._sums else value.clone()
            self._counts[key] = self._counts.get(key, 0) + 1

    def count_images(self, n: int) -> None:
        self._images += n

    @property
    def pending(self) -> bool:
        return bool(self._counts)

    def append(self, record: dict) -> None:
        """Write a record made elsewhere (an evaluation) as one line."""
        if self.path is None:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def flush(self, step: int, extra: dict[str, torch.Tensor], partial: bool = False) -> dict:
        """Write one record: interval means of the stats, `extra` values as they are now."""
        now = time.perf_counter()
        record: dict = {"step": step}
        for key, total in self.reduce(self._sums).items():
            record[key] = round(total.item() / self._counts[key], 6)
        for key, value in extra.items():
            record[key] = round(float(value), 6)
        record["images_per_s"] = round(self._images / max(now - self._since, 1e-9), 1)
        record["elapsed_s"] = round(now - self.started, 2)
        if partial:
            record["partial"] = True
        if self.path is not None:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
        if not partial:
            self._sums, self._counts, self._images, self._since = {}, {}, 0, now
        return record

    # ---- checkpointing the sums of an unfinished interval ----------------------------------
    def pack_pending(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {_PENDING_PREFIX + key: total for key, total in self.reduce(self._sums).items()}
        return tensors, {"counts": self._counts, "images": self._images}

    def restore_pending(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Continue an interval from a checkpoint (`meta` passed checkpoint.check_metadata)."""
        sums = {
            name[len(_PENDING_PREFIX) :]: value.clone()
            for name, value in tensors.items()
            if name.startswith(_PENDING_PREFIX)
        }
        if set(sums) != set(meta["counts"]):
            raise GanforgeError(
                f"the logbook's pending sums ({', '.join(sorted(sums)) or 'none'}) and counts "
                f"({', '.join(sorted(meta['counts'])) or 'none'}) do not match"
            )
        for key, total in sums.items():
            if total.dim() != 0 or not total.is_floating_point():
                raise GanforgeError(f"tensor '{_PENDING_PREFIX}{key}' is not one number")
        self._sums = sums
        self._counts = dict(meta["counts"])
        self._images = meta["images"]


def truncate_records(
    path: Path, last_step: int, keep: Callable[[dict], bool] | None = None
) -> None:
    """Keep the complete records up to `last_step`, and those `keep` says are older than
    their step: the resumed run rewrites the rest. Lines that do not parse are dropped; the
    records kept are kept byte for byte."""
    if not path.is_file():
        return
    data = read_metrics_file(path)
    lines = record_lines(data)
    kept = []
    for line in lines:
        record = parse_record(line)
        if record is None:
            continue
        if (record["step"] <= last_step and not record.get("partial")) or (keep and keep(record)):
            kept.append(line)
    # rewrite also when the last line lacks its newline: the next record must start a new line
    if len(kept) != len(lines) or (data and not data.endswith(b"\n")):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"".join(line + b"\n" for line in kept))

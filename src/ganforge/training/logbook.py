"""Statistics gathered as tensors during steps and read out (one host sync) every N steps.

Records fall on multiples of --log-every. A run that ends (or is interrupted) between two of
them writes a last record marked `"partial": true`; its pending sums are also saved in the
checkpoint, so a resumed run drops that record and writes exactly the records an
uninterrupted run would have written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ganforge.atomic import atomic_write_text

WALL_CLOCK_FIELDS = ("images_per_s", "elapsed_s")  # the only fields that differ between reruns
_PENDING_PREFIX = "logbook."


class Logbook:
    def __init__(self, path: Path):
        self.path = path
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
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def flush(self, step: int, extra: dict[str, torch.Tensor], partial: bool = False) -> dict:
        """Write one record: interval means of the stats, `extra` values as they are now."""
        now = time.perf_counter()
        record: dict = {"step": step}
        for key, total in self._sums.items():
            record[key] = round(total.item() / self._counts[key], 6)
        for key, value in extra.items():
            record[key] = round(float(value), 6)
        record["images_per_s"] = round(self._images / max(now - self._since, 1e-9), 1)
        record["elapsed_s"] = round(now - self.started, 2)
        if partial:
            record["partial"] = True
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if not partial:
            self._sums, self._counts, self._images, self._since = {}, {}, 0, now
        return record

    # ---- checkpointing the sums of an unfinished interval ----------------------------------
    def pack_pending(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {_PENDING_PREFIX + key: total for key, total in self._sums.items()}
        return tensors, {"counts": self._counts, "images": self._images}

    def restore_pending(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self._sums = {
            name[len(_PENDING_PREFIX) :]: value.clone()
            for name, value in tensors.items()
            if name.startswith(_PENDING_PREFIX)
        }
        self._counts = dict(meta["counts"])
        self._images = meta["images"]


def parse_record(line: str) -> dict | None:
    """One metrics.jsonl line, or None for a line torn by a crash mid-write."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("step"), int) else None


def truncate_records(path: Path, last_step: int) -> None:
    """Keep the complete records up to `last_step`: the resumed run rewrites the rest."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [
        line
        for line, record in zip(lines, map(parse_record, lines))
        if record is not None and record["step"] <= last_step and not record.get("partial")
    ]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))

"""Statistics gathered as tensors during steps and read out (one host sync) every N steps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ganforge.atomic import atomic_write_text

WALL_CLOCK_FIELDS = ("images_per_s", "elapsed_s")  # the only fields that differ between reruns


class Logbook:
    def __init__(self, path: Path):
        self.path = path
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._images = 0
        self._since = time.perf_counter()
        self.started = time.perf_counter()

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            self._sums[key] = self._sums[key] + value if key in self._sums else value.clone()
            self._counts[key] = self._counts.get(key, 0) + 1

    def count_images(self, n: int) -> None:
        self._images += n

    def flush(self, step: int, extra: dict[str, torch.Tensor]) -> dict[str, float]:
        """Write one record: interval means of the stats, `extra` values as they are now."""
        now = time.perf_counter()
        record: dict[str, float] = {"step": step}
        for key, total in self._sums.items():
            record[key] = round(total.item() / self._counts[key], 6)
        for key, value in extra.items():
            record[key] = round(float(value), 6)
        record["images_per_s"] = round(self._images / max(now - self._since, 1e-9), 1)
        record["elapsed_s"] = round(now - self.started, 2)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self._sums, self._counts, self._images, self._since = {}, {}, 0, now
        self._last = record
        return record

    @property
    def last(self) -> dict[str, float]:
        return self._last


def truncate_records(path: Path, last_step: int) -> None:
    """Drop records after `last_step`: a resumed run rewrites the steps after its checkpoint."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= last_step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))

"""Shuffled batches from an in-memory dataset, with a position of two integers.

Each epoch's order is a permutation drawn from (seed, epoch) alone, so resuming at
(epoch, batch) replays exactly the order an uninterrupted run would have seen.
"""

from __future__ import annotations

import torch


class EpochBatches:
    def __init__(self, size: int, batch_size: int, seed: int, epoch: int = 0, batch: int = 0):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.batches_per_epoch = size // batch_size
        self.epoch, self.batch = epoch, batch
        self._order = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        # modulo 2^64, what manual_seed takes (a no-op for seeds under 2^44)
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**64)
        return torch.randperm(self.size, generator=generator)

    def next_indices(self) -> torch.Tensor:
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        start = self.batch * self.batch_size
        self.batch += 1
        return self._order[start : start + self.batch_size]

    @property
    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch}

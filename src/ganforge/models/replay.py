"""Experience replay for D (Shrivastava et al. 2017; the "replay" trick of GAN hacks): a pool
of fakes G made at earlier steps, half of which D sees again next to the newest ones. A G that
cycles between modes is then still judged on where it was, so D does not forget it.

The pool is part of the training state: its images (and their classes, for a conditional D)
go into every checkpoint, and its random draws come from torch's global RNG (checkpointed
too), so a resumed run mixes exactly the fakes an uninterrupted one would have.
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError


class ReplayPool:
    """At most `capacity` earlier fakes (detached), with their labels where D takes them."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    def mix(
        self, fakes: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fakes D judges this step: the first half of `fakes` replaced by random earlier
        ones (none while the pool is empty), with their labels; then `fakes` enter the pool."""
        fakes = fakes.detach()
        mixed, mixed_labels = fakes, labels
        if len(self):
            half = len(fakes) // 2
            picks = torch.randint(len(self), (half,), device=self.images.device)
            mixed = torch.cat([self.images[picks], fakes[half:]])
            if labels is not None:
                mixed_labels = torch.cat([self.labels[picks], labels[half:]])
        self._store(fakes, labels)
        return mixed, mixed_labels

    def _store(self, fakes: torch.Tensor, labels: torch.Tensor | None) -> None:
        """Fill the pool; once full, each new fake takes the place of a random one."""
        if self.images is None:
            self.images = fakes[: self.capacity].clone()
            self.labels = None if labels is None else labels[: self.capacity].clone()
            fakes = fakes[self.capacity :]
            labels = None if labels is None else labels[self.capacity :]
        room = self.capacity - len(self)
        if room > 0 and len(fakes):
            self.images = torch.cat([self.images, fakes[:room]])
            if labels is not None:
                self.labels = torch.cat([self.labels, labels[:room]])
            fakes = fakes[room:]
            labels = None if labels is None else labels[room:]
        if len(fakes):  # distinct slots: a repeated index would keep an arbitrary one on a GPU
            fakes = fakes[-self.capacity :]
            labels = None if labels is None else labels[-self.capacity :]
            slots = torch.randperm(self.capacity, device=fakes.device)[: len(fakes)]
            self.images[slots] = fakes
            if labels is not None:
                self.labels[slots] = labels

    # ---- in a checkpoint ----------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        found = {}
        if self.images is not None:
            found["replay.images"] = self.images
            if self.labels is not None:
                found["replay.labels"] = self.labels
        return found

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], device) -> None:
        """The pool a checkpoint holds (empty if it holds none: saved before the first step)."""
        images, labels = tensors.get("replay.images"), tensors.get("replay.labels")
        if images is not None and len(images) > self.capacity:
            raise GanforgeError(
                f"its replay pool holds {len(images)} fakes, more than --replay {self.capacity}"
            )
        if labels is not None and (images is None or len(labels) != len(images)):
            raise GanforgeError("its replay pool's labels do not match its images")
        # copies: the pool is changed in place, the checkpoint's tensors (a rollback's
        # snapshot) must not be
        self.images = None if images is None else images.to(device, copy=True)
        self.labels = None if labels is None else labels.to(device, copy=True)

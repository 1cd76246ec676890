"""Real batches for training, in the order a seeded index stream gives.

The order (training/batches.py's EpochBatches: a permutation per epoch drawn from the seed) says
which images form each batch; this module fetches them. A decoded dataset is one uint8 tensor on
the training device (or in host memory) and a batch is an index lookup; a folder too large for
memory is decoded by DataLoader workers that read the same order ahead of time. Either way the
batch at a position is the same images, so runs are reproducible and resume exactly, whatever
the cache or the number of workers.
"""

from __future__ import annotations

import copy
import signal
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ganforge.config import DATA_CACHES as CACHES
from ganforge.data.augment import hflip_, hflip_decisions, to_device
from ganforge.data.dataset import ImageDataset, to_model_range
from ganforge.data.folder import ImageFolder
from ganforge.errors import GanforgeError

PREFETCH_BATCHES = 4  # per worker


class IndexOrder(Protocol):
    """What RealBatches needs of the batch order (EpochBatches has it)."""

    epoch: int
    size: int

    def next_indices(self) -> torch.Tensor: ...


class RealBatches:
    """Batches of real images as the model sees them: float [-1, 1] NCHW on `device`, with
    int64 labels; optionally mirrored (`hflip`) by decisions drawn from (seed, epoch). Paired
    data (an ImageDataset with `sources`) adds "sources", mirrored with their images."""

    def __init__(
        self,
        images: ImageDataset | ImageFolder,
        order: IndexOrder,
        device: torch.device | str = "cpu",
        *,
        cache: str = "auto",
        workers: int = 2,
        hflip: bool = False,
        seed: int = 0,
    ):
        if cache not in CACHES:
            raise GanforgeError(f"--data-cache: '{cache}' is not one of {', '.join(CACHES)}")
        if order.size != len(images.labels):
            raise ValueError(
                f"the batch order is over {order.size} images, not {len(images.labels)}"
            )
        self.device = torch.device(device)
        self.order = order
        self.workers, self.hflip, self.seed = workers, hflip, seed
        self.folder = images if isinstance(images, ImageFolder) else None
        self.labels = images.labels
        self.sources: torch.Tensor | None = None
        if not self.streaming:  # decoded: images (or points) in one tensor
            if cache == "stream":
                raise GanforgeError(
                    f"--data-cache: stream decodes image folders batch by batch; "
                    f"'{images.name}' is already decoded (use auto, cpu or device)"
                )
            on_device = cache in ("auto", "device")
            self.images = images.images.to(self.device if on_device else "cpu")
            self.labels = self.labels.to(self.images.device)
            if images.sources is not None:
                self.sources = images.sources.to(self.images.device)
            if self.images.device.type == "cpu" and self.device.type == "cuda":
                self.images = self.images.pin_memory()
                if self.sources is not None:
                    self.sources = self.sources.pin_memory()
        self._stream: Iterator | None = None
        self._flips: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def streaming(self) -> bool:
        return self.folder is not None

    def restart(self, order: IndexOrder) -> None:
        """Continue from another order (e.g. one restored from a checkpoint's position)."""
        self.close()
        self.order = order

    def next(self) -> dict[str, torch.Tensor]:
        if self.streaming and self._stream is None:
            self._stream = self._start_stream()
        indices = self.order.next_indices()
        if self.streaming:
            images = self._next_streamed(indices)
            labels = self.labels[indices]
        else:  # labels and sources live with the images
            on_images = to_device(indices, self.images.device)
            images, labels = self.images[on_images], self.labels[on_images]
        sources = None if self.sources is None else self.sources[on_images]
        if self.hflip:
            flip = self._flip_decisions(self.order.epoch)[indices]
            images = hflip_(images, flip)  # a fresh tensor: flipped in place
            if sources is not None:  # a pair is mirrored as a whole
                sources = hflip_(sources, flip)
        images = to_device(images, self.device)
        batch = {"images": to_model_range(images), "labels": to_device(labels, self.device)}
        if sources is not None:
            batch["sources"] = to_model_range(to_device(sources, self.device))
        return batch

    def close(self) -> None:
        """Stop the decoding workers (a later `next` starts new ones where the order stands)."""
        self._stream = None  # the DataLoader iterator shuts its workers down when released

    # ---- streaming ---------------------------------------------------------------------------
    def _start_stream(self) -> Iterator:
        loader = DataLoader(
            _FolderItems(self.folder),
            batch_sampler=_IndexStream(copy.deepcopy(self.order)),
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=PREFETCH_BATCHES if self.workers else None,
            worker_init_fn=_ignore_ctrl_c if self.workers else None,
        )
        return iter(loader)

    def _next_streamed(self, indices: torch.Tensor) -> torch.Tensor:
        fetched, images, errors = next(self._stream)
        if not torch.equal(fetched, indices):  # the loader's copy of the order drifted: a bug
            raise RuntimeError("streamed batch does not match the batch order")
        failed = [error for error in errors if error]
        if failed:
            raise GanforgeError(failed[0])
        return images

    def _flip_decisions(self, epoch: int) -> torch.Tensor:
        if self._flips is None or self._flips[0] != epoch:
            self._flips = (epoch, hflip_decisions(self.seed, epoch, len(self)))
        return self._flips[1]


class _IndexStream:
    """The batch order as an endless batch sampler, for a DataLoader to read ahead."""

    def __init__(self, order: IndexOrder):
        self.order = order

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield self.order.next_indices().tolist()


class _FolderItems(Dataset):
    """Decoded images of a folder by index; a failure travels back as a message, not a
    worker traceback, so the trainer can raise one clear error naming the file."""

    def __init__(self, folder: ImageFolder):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, str]:
        try:
            return index, torch.from_numpy(self.folder.decode(index)), ""
        except GanforgeError as exc:
            shape = (self.folder.channels, self.folder.resolution, self.folder.resolution)
            return index, torch.from_numpy(np.zeros(shape, dtype=np.uint8)), str(exc)


def _ignore_ctrl_c(_: int) -> None:
    """Ctrl-C (or a SIGTERM to the process group) reaches the workers too: they leave it to the
    trainer, which finishes its iteration (reading more batches) and saves a checkpoint."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

"""The in-memory image dataset every source produces, and its resizing to a model's shape."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from ganforge.bounds import MAX_DATASET_BYTES, check_images


@dataclass
class ImageDataset:
    """Images as uint8 NCHW (0-255) with integer labels (-1 where unknown), and for paired data
    (image-to-image translation) the aligned `sources`: uint8 NCHW, sources[i] maps to images[i].

    Small datasets are held as one tensor: batches are index lookups, with no worker processes.
    """

    images: torch.Tensor  # uint8, (N, C, H, W)
    labels: torch.Tensor  # int64, (N,)
    name: str
    class_names: list[str]
    location: str = ""  # the file or folder the images were read from
    skipped: list[str] = field(default_factory=list)  # "path: reason" for each file left out
    sources: torch.Tensor | None = None  # uint8 (N, C, H, W): the input of each pair, or None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def images_at(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 images at `indices` (the same call a streamed folder answers by decoding)."""
        return self.images[indices.to(self.images.device)]

    @property
    def paired(self) -> bool:
        return self.sources is not None

    def sources_at(self, indices: torch.Tensor) -> torch.Tensor:
        """uint8 source images at `indices` (paired data only)."""
        if self.sources is None:
            raise ValueError(f"dataset '{self.name}' has no source images")
        return self.sources[indices.to(self.sources.device)]

    def to_shape(self, resolution: int | None, channels: int | None) -> ImageDataset:
        """Resize (antialiased) and convert channels, the sources with the images; returns self
        when nothing changes."""
        images = _reshape(self.images, resolution, channels)
        if images is self.images:
            return self
        sources = None if self.sources is None else _reshape(self.sources, resolution, channels)
        return replace(self, images=images, sources=sources)


def _reshape(images: torch.Tensor, resolution: int | None, channels: int | None) -> torch.Tensor:
    if channels is not None and channels != images.shape[1]:
        images = _convert_channels(images, channels)
    if resolution is not None and resolution != images.shape[-1]:
        check_images("--resolution", len(images), resolution, images.shape[1], MAX_DATASET_BYTES)
        resized = torch.empty(
            (len(images), images.shape[1], resolution, resolution), dtype=torch.uint8
        )
        for start in range(0, len(images), _RESIZE_CHUNK):  # a float copy of a chunk at a time
            chunk = F.interpolate(
                images[start : start + _RESIZE_CHUNK].float(),
                size=(resolution, resolution),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
            resized[start : start + len(chunk)] = chunk.round().clamp(0, 255).to(torch.uint8)
        images = resized
    return images


_RESIZE_CHUNK = 512


def _convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    gray = (images.float() * weights).sum(dim=1, keepdim=True)
    return gray.round().clamp(0, 255).to(torch.uint8)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of a tanh generator (one new tensor).
    Float data (points: data/points.py) is what the model sees already: copied as it is."""
    if images.is_floating_point():
        return images.to(torch.float32, copy=True)
    return images.to(torch.float32, copy=True).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped)."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)

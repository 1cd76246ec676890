"""The feature-extractor seam: uint8 images in, features (and class logits) out.

Every metric works in some network's feature space. An extractor owns its input convention
(size, channels, value range) so callers hand it images exactly as ganforge stores them —
uint8, NCHW, any size, 1 or 3 channels — and never preprocess by hand. `identity` is a hash of
the weights and the preprocessing: cached real-data features are keyed by it, so new weights
or a different resize never reuse stale statistics.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ganforge.errors import GanforgeError


class FeatureExtractor(nn.Module):
    """Base class. Subclasses set `name`, `feature_dim`, `num_classes` (0: no classifier head)
    and implement `prepare` and `embed_prepared` (and `logits_from_features` with a head)."""

    name: str = "extractor"
    feature_dim: int = 0
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    batch_size: int = 200  # images per forward pass by default (memory, not speed, decides)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> the float input the network expects (resize, channels, range)."""
        raise NotImplementedError

    def prepare_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Float (N, C, H, W) pixel values in [0, 255] -> the prepared input, differentiably (a
        projection optimises images through the features); `prepare` for images not rounded."""
        raise GanforgeError(f"the {self.name} extractor cannot take unrounded pixels")

    def embed_prepared(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared input -> features (N, feature_dim)."""
        raise NotImplementedError

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Features -> class logits (N, num_classes); only when num_classes > 0."""
        raise NotImplementedError(f"the {self.name} extractor has no classifier head")

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.embed_prepared(self.prepare(images))
        logits = self.logits_from_features(features) if self.num_classes else None
        return features, logits

    def preprocessing_tag(self) -> str:
        """A short string naming the preprocessing; part of `identity`."""
        return ""

    @property
    def device(self) -> torch.device:
        return next(iter(self.state_dict().values())).device

    def identity(self) -> str:
        """sha256 over the weights (names, shapes, bytes) and the preprocessing tag (memoised:
        extractors are frozen once loaded)."""
        cached = self.__dict__.get("_identity")
        if cached is not None:
            return cached
        digest = hashlib.sha256(f"{self.name}|{self.preprocessing_tag()}".encode())
        for key, tensor in sorted(self.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        self.__dict__["_identity"] = digest.hexdigest()
        return self.__dict__["_identity"]


def as_uint8_nchw(images, what: str = "images") -> torch.Tensor:
    """Accept uint8 numpy/torch batches as NCHW or NHWC (1 or 3 channels) -> uint8 NCHW tensor."""
    import numpy as np

    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    if x.dtype != torch.uint8:
        raise GanforgeError(f"{what}: expected uint8 images (0-255), got dtype {x.dtype}")
    if x.ndim != 4:
        raise GanforgeError(
            f"{what}: expected a batch (N, C, H, W) or (N, H, W, C), got {tuple(x.shape)}"
        )
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise GanforgeError(f"{what}: expected 1 or 3 channels, got shape {tuple(x.shape)}")
    return x.contiguous()

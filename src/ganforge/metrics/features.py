"""Running an extractor over many images in batches: arrays, tensors or streams of batches.

Large sets never sit in memory as floats: images go through the network batch by batch and only
the features (N x D float32) and logits are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ganforge.errors import GanforgeError
from ganforge.metrics.extractor import FeatureExtractor, as_uint8_nchw


@dataclass(frozen=True)
class FeatureSet:
    """Features (N, D) and, for extractors with a classifier head, logits (N, C) of N images."""

    features: np.ndarray
    logits: np.ndarray | None
    extractor: str  # the extractor's identity() that produced them

    def __len__(self) -> int:
        return len(self.features)


def _batches(images, batch_size: int) -> Iterable[torch.Tensor]:
    if isinstance(images, (np.ndarray, torch.Tensor)):
        for start in range(0, len(images), batch_size):
            yield as_uint8_nchw(images[start : start + batch_size])
    else:  # an iterable of uint8 batches (e.g. a generator sampling a model)
        for batch in images:
            yield as_uint8_nchw(batch)


@torch.inference_mode()
def extract_features(
    extractor: FeatureExtractor,
    images,
    *,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    total: int | None = None,
) -> FeatureSet:
    """Features of `images`: uint8 (N, C, H, W) / (N, H, W, C) arrays or tensors, or an iterable
    of such batches."""
    device = torch.device(device) if device is not None else extractor.device
    extractor.eval().to(device)
    batch_size = batch_size or extractor.batch_size
    if total is None and hasattr(images, "__len__"):
        total = len(images)
    features, logits = [], []
    with tqdm(
        total=total, disable=not progress, unit="img", leave=False, desc=extractor.name
    ) as bar:
        for batch in _batches(images, batch_size):
            f, logit = extractor(batch.to(device))
            features.append(f.float().cpu())
            if logit is not None:
                logits.append(logit.float().cpu())
            bar.update(len(batch))
    if not features:
        raise GanforgeError("images: the set is empty")
    return FeatureSet(
        torch.cat(features).numpy(),
        torch.cat(logits).numpy() if logits else None,
        extractor.identity(),
    )

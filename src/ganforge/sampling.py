"""Turning noise into uint8 images: seeded, batched, in eval mode, independent of training RNG."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ganforge.data import to_uint8
from ganforge.models import ModelFamily


def sample_batches(
    family: ModelFamily, network: nn.Module, n: int, seed: int, batch_size: int = 256
) -> Iterator[torch.Tensor]:
    """`n` samples as uint8 NCHW CPU batches, streamed: for sets too large to hold (metrics).
    The same seed gives the same images as `generate`."""
    device = next(network.parameters()).device
    noise = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    was_training = network.training
    network.eval()
    try:
        for z in noise.split(batch_size):
            with torch.no_grad():
                yield to_uint8(network(z.to(device))).cpu()
    finally:
        network.train(was_training)


def generate(
    family: ModelFamily, network: nn.Module, n: int, seed: int, batch_size: int = 256
) -> np.ndarray:
    """`n` samples as uint8 (N, H, W, C). The noise comes from its own generator seeded by
    `seed`, so the same seed gives the same images, and the global RNG is left untouched."""
    chunks = list(sample_batches(family, network, n, seed, batch_size))
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()

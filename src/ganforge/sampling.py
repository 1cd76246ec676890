"""Turning noise into uint8 images: seeded, batched, in eval mode, independent of training RNG."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ganforge.data import to_uint8
from ganforge.models import ModelFamily


@torch.no_grad()
def generate(
    family: ModelFamily, network: nn.Module, n: int, seed: int, batch_size: int = 256
) -> np.ndarray:
    """`n` samples as uint8 (N, H, W, C). The noise comes from its own generator seeded by
    `seed`, so the same seed gives the same images, and the global RNG is left untouched."""
    device = next(network.parameters()).device
    noise = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    was_training = network.training
    network.eval()
    try:
        chunks = [to_uint8(network(z.to(device))).cpu() for z in noise.split(batch_size)]
    finally:
        network.train(was_training)
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()

"""Exponential moving average of a network's weights (each of the family's `averaged` ones: the
generator's): smoother, better samples for free (Yazici et al. 2019). The average ramps up
early so it does not remember the random init."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    def __init__(self, network: nn.Module, decay: float):
        self.decay = decay
        self.network = copy.deepcopy(network).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        beta = min(self.decay, (1.0 + step) / (10.0 + step))
        torch._foreach_lerp_(
            list(self.network.parameters()), list(network.parameters()), 1.0 - beta
        )
        for average, current in zip(self.network.buffers(), network.buffers()):
            average.copy_(current)

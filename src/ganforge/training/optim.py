"""Optimisers by name, built by the loop (never stored on a model)."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import TrainConfig


def make_optimizer(config: TrainConfig, network: nn.Module, lr: float) -> torch.optim.Optimizer:
    params = network.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(config.beta1, config.beta2))
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=config.beta1)
    return torch.optim.SGD(params, lr=lr, momentum=config.beta1)


SAMPLE_MAKERS = ("generator", "decoder")  # a GAN's generator, a VAE's decoder


def learning_rate(config: TrainConfig, network: str) -> float:
    """The networks that make the samples (G, a VAE's decoder) use --lr-g; every other network
    (D, critics, encoders) uses --lr-d."""
    return config.lr_g if network in SAMPLE_MAKERS else config.lr_d

"""Optimisers by name, built by the loop (never stored on a model)."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import TrainConfig
from ganforge.models import ModelFamily
from ganforge.training.fast_paths import fastest


def make_optimizer(config: TrainConfig, network: nn.Module, lr: float) -> torch.optim.Optimizer:
    """The optimiser of `network`, in its fastest implementation on the network's device
    (fused or foreach: the same update, to float rounding; training/fast_paths.py)."""
    params = list(network.parameters())
    if config.optimizer == "adam":
        return fastest(torch.optim.Adam, params, lr=lr, betas=(config.beta1, config.beta2))
    if config.optimizer == "rmsprop":
        return fastest(torch.optim.RMSprop, params, lr=lr, momentum=config.beta1)
    return fastest(torch.optim.SGD, params, lr=lr, momentum=config.beta1)


def learning_rate(config: TrainConfig, family: ModelFamily, network: str) -> float:
    """`network`'s learning rate: the option its family names for it (models/family.py; the
    networks that make samples learn at --lr-g, critics and encoders at --lr-d)."""
    return getattr(config, family.learning_rate_option(network))

"""Learning-rate schedules (--lr-warmup, --lr-decay): each network's rate at a step is its
configured rate times one factor, the same for every network. A linear warm-up from 0 lets
Adam's moments settle before full steps; a decay to 0 over the run lets G's samples settle on
what D accepts instead of circling it (on ring8, the share of samples within 3 std of a mode
went from 30% to 84% when the rate fell tenfold for the last quarter of a run).

The rate a schedule scales is kept in each parameter group as `base_lr` (so it is in every
checkpoint, and a NaN rollback lowers it for good); a run without a schedule has none and its
rates are never touched. The schedule follows --steps: resuming to the same --steps is exact,
while extending a run with --resume --steps M stretches the decay towards step M.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from ganforge.config import TrainConfig


def scheduled(config: TrainConfig) -> bool:
    return config.lr_decay != "none" or config.lr_warmup > 0


def lr_factor(config: TrainConfig, step: int) -> float:
    """The multiple of the configured rates for the iteration after `step` iterations: rising
    linearly over --lr-warmup steps to 1, then falling by --lr-decay to 0 at --steps."""
    warmup = config.lr_warmup
    if step < warmup:
        return (step + 1) / warmup
    if config.lr_decay == "none":
        return 1.0
    progress = min((step - warmup) / max(config.steps - warmup, 1), 1.0)
    if config.lr_decay == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def start_schedule(config: TrainConfig, optimizers: Iterable[torch.optim.Optimizer]) -> None:
    """Record each group's configured rate as the one the schedule scales (once, when built)."""
    if scheduled(config):
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group.setdefault("base_lr", group["lr"])


def apply_schedule(
    config: TrainConfig, optimizers: Iterable[torch.optim.Optimizer], step: int
) -> None:
    """Set every rate for the iteration after `step` iterations (nothing without a schedule)."""
    if not scheduled(config):
        return
    factor = lr_factor(config, step)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor

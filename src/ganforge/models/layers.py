"""The layer choices a user may make of an architecture (a model's own options): activations
and normalisations by name, and a list of layer widths, each checked naming its flag."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

import torch
from torch import nn

from ganforge import bounds
from ganforge.config import option_error

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": lambda: nn.LeakyReLU(0.2, True),  # slope 0.2, as DCGAN's D
    "relu": lambda: nn.ReLU(True),
    "elu": lambda: nn.ELU(inplace=True),
    "gelu": nn.GELU,
    "silu": lambda: nn.SiLU(True),
    "tanh": nn.Tanh,
}


def activation_option(network: str, default: str) -> Any:
    """The model-option field of G's or D's hidden activation (--g-activation, --d-activation):
    mlp and dcgan share the flags, each with its own default."""
    return field(
        default=default,
        metadata={
            "help": f"mlp, dcgan: {network}'s hidden activation ({', '.join(ACTIVATIONS)}; "
            "leaky_relu has slope 0.2)"
        },
    )


def check_activations(options: Any) -> None:
    """Both activations of a model's options are known ones, or an error naming the flag."""
    for option in ("g_activation", "d_activation"):
        name = getattr(options, option)
        if name not in ACTIVATIONS:
            raise option_error(option, f"'{name}' is not one of {', '.join(ACTIVATIONS)}")


def parse_widths(option: str, text: str) -> list[int]:
    """ "256,512,1024" -> [256, 512, 1024]; "" -> [] (the model's default plan)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        widths = [int(part) for part in parts]
    except ValueError:
        raise option_error(option, f"'{text}' is not a comma-separated list of widths") from None
    for width in widths:
        if width < 1:
            raise option_error(option, f"widths must be at least 1, got {width}")
        bounds.check_at_most(f"--{option.replace('_', '-')}", width, bounds.MAX_WIDTH)
    if len(widths) > MAX_LAYERS:
        raise option_error(option, f"at most {MAX_LAYERS} layers, got {len(widths)}")
    return widths


MAX_LAYERS = 64  # hidden layers a user may list


class Maxout(nn.Module):
    """`size` maxout units of `pieces` linear pieces each (Goodfellow et al. 2013): each unit
    outputs the largest of its pieces, a learned convex piecewise-linear activation. The
    discriminators of the original GAN and of PacGAN's toy experiments are built of them."""

    def __init__(self, in_features: int, size: int, pieces: int):
        super().__init__()
        self.size, self.pieces = size, pieces
        self.linear = nn.Linear(in_features, size * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(x.shape[0], self.size, self.pieces).amax(dim=-1)


class MinibatchStd(nn.Module):
    """ProGAN's minibatch standard deviation (Karras et al. 2018): one more feature (or
    feature map) holding how much the samples of each group of `group_size` differ, averaged
    over features. Samples of a collapsed generator barely differ, so D can tell them apart
    from a real batch by this alone; G must then spread out. Takes (N, F) or (N, C, H, W);
    a batch not divisible by the group is one group."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        group = self.group_size if n % self.group_size == 0 else n
        grouped = x.reshape(group, n // group, *x.shape[1:])  # sample i with i + n/group, ...
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (n/group, ...)
        per_group = std.flatten(1).mean(dim=1)  # (n/group,)
        feature = per_group.repeat(group).view(n, 1, *([1] * (x.dim() - 2)))
        return torch.cat([x, feature.expand(n, 1, *x.shape[2:])], dim=1)

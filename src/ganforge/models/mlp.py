"""The vanilla GAN of Goodfellow et al. (2014): dense generator and discriminator.

Its architecture is the model's own options, saved with the run, so the course's exercises
("make G deeper, try other activations") need no code: `--g-layers 256,512,1024,1024`,
`--g-activation relu`, `--g-norm batch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ganforge import bounds
from ganforge.config import ModelOptions, TrainConfig, check_at_least, check_choice
from ganforge.models.gan import GANFamily, gan_family
from ganforge.models.layers import (
    ACTIVATIONS,
    Maxout,
    MinibatchStd,
    activation_option,
    check_activations,
    parse_widths,
)
from ganforge.models.point_gan import PointGANFamily

G_NORMS = ("none", "batch", "layer")
MAX_MAXOUT_PIECES = 64


@dataclass
class MLPOptions(ModelOptions):
    g_layers: str = field(
        default="",
        metadata={
            "help": "mlp: widths of G's hidden layers, comma-separated, e.g. 256,512,1024,1024 "
            "for a deeper G (default: 4, 8, 16 x --width)"
        },
    )
    d_layers: str = field(
        default="",
        metadata={"help": "mlp: widths of D's hidden layers (default: 8, 4 x --width)"},
    )
    g_activation: str = activation_option("G", "leaky_relu")
    d_activation: str = activation_option("D", "leaky_relu")
    g_norm: str = field(
        default="none",
        metadata={"help": f"mlp: normalisation after G's hidden layers ({', '.join(G_NORMS)})"},
    )
    d_maxout: int = field(
        default=0,
        metadata={
            "help": "mlp: D's hidden units as maxouts of K linear pieces (the original GAN's "
            "and PacGAN's D; PacGAN uses 5) instead of --d-activation (0: off)"
        },
    )

    def check(self) -> None:
        parse_widths("g_layers", self.g_layers)
        parse_widths("d_layers", self.d_layers)
        check_activations(self)
        check_choice(self, "g_norm", G_NORMS)
        check_at_least(self, ("d_maxout",), 0, "must be 0 (off) or a number of pieces")
        bounds.check_at_most("--d-maxout", self.d_maxout, MAX_MAXOUT_PIECES)


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> samples shaped `output_shape` through dense hidden layers: images
    (C, R, R) in [-1, 1] through a final tanh, or points (D,) unbounded (`squash` off)."""

    def __init__(
        self,
        z_dim: int,
        output_shape: tuple[int, ...],
        width: int = 64,
        hidden: list[int] | None = None,
        activation: str = "leaky_relu",
        norm: str = "none",
        squash: bool = True,
    ):
        super().__init__()
        self.output_shape = tuple(output_shape)
        hidden = hidden or [4 * width, 8 * width, 16 * width]
        layers: list[nn.Module] = []
        size = z_dim
        for out in hidden:
            layers.append(nn.Linear(size, out))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(out))
            elif norm == "layer":
                layers.append(nn.LayerNorm(out))
            layers.append(ACTIVATIONS[activation]())
            size = out
        layers.append(nn.Linear(size, math.prod(self.output_shape)))
        if squash:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.output_shape)


class MLPDiscriminator(nn.Module):
    """Samples (N, ...) of `input_size` numbers each (images, points, or packs of them) -> one
    real/fake logit per sample (N,); `minibatch_std` adds ProGAN's layer before the logit;
    `maxout` pieces make the hidden layers maxout units instead of `activation`."""

    def __init__(
        self,
        input_size: int,
        width: int = 64,
        hidden: list[int] | None = None,
        activation: str = "leaky_relu",
        minibatch_std: bool = False,
        maxout: int = 0,
    ):
        super().__init__()
        size = input_size
        layers: list[nn.Module] = [nn.Flatten()]
        for out in hidden or [8 * width, 4 * width]:
            if maxout:
                layers.append(Maxout(size, out, maxout))
            else:
                layers += [nn.Linear(size, out), ACTIVATIONS[activation]()]
            size = out
        if minibatch_std:
            layers.append(MinibatchStd())
            size += 1
        layers.append(nn.Linear(size, 1))
        self.net = nn.Sequential(*layers)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last hidden layer (N, F), before the logit (feature matching reads it)."""
        return self.net[:-1](images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).view(-1)


def build_mlp(config: TrainConfig, img_resolution: int, img_channels: int) -> GANFamily:
    """Images of the run's size, or (with `config.point_dims`: point data) points."""
    options: MLPOptions = config.model_options
    if config.point_dims:
        shape: tuple[int, ...] = (config.point_dims,)
    else:
        shape = (img_channels, img_resolution, img_resolution)
    generator = MLPGenerator(
        config.z_dim,
        shape,
        width=config.width,
        hidden=parse_widths("g_layers", options.g_layers),
        activation=options.g_activation,
        norm=options.g_norm,
        squash=not config.point_dims,  # a tanh would bound points to [-1, 1]
    )
    discriminator = MLPDiscriminator(
        math.prod(shape) * config.pack,
        width=config.width,
        hidden=parse_widths("d_layers", options.d_layers),
        activation=options.d_activation,
        minibatch_std=config.minibatch_std,
        maxout=options.d_maxout,
    )
    if config.point_dims:
        return gan_family(config, generator, discriminator, family=PointGANFamily)
    return gan_family(config, generator, discriminator)

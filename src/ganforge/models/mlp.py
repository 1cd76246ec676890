"""The vanilla GAN of Goodfellow et al. (2014): dense generator and discriminator."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLPGenerator(nn.Module):
    """z (N, z_dim) -> images (N, C, R, R) in [-1, 1] through dense LeakyReLU layers."""

    def __init__(self, z_dim: int, img_resolution: int, img_channels: int, width: int = 64):
        super().__init__()
        self.image_shape = (img_channels, img_resolution, img_resolution)
        hidden = [4 * width, 8 * width, 16 * width]
        layers: list[nn.Module] = []
        size = z_dim
        for out in hidden:
            layers += [nn.Linear(size, out), nn.LeakyReLU(0.2)]
            size = out
        layers += [nn.Linear(size, math.prod(self.image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """images (N, C, R, R) -> one real/fake logit per image (N,)."""

    def __init__(self, img_resolution: int, img_channels: int, width: int = 64):
        super().__init__()
        size = img_channels * img_resolution * img_resolution
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size, 8 * width),
            nn.LeakyReLU(0.2),
            nn.Linear(8 * width, 4 * width),
            nn.LeakyReLU(0.2),
            nn.Linear(4 * width, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).view(-1)

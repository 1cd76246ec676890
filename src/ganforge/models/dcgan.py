"""DCGAN (Radford et al. 2016): transposed convolutions with batchnorm in G; a strided
all-convolutional D with LeakyReLU, no pooling and no dense layers; N(0, 0.02) init.

The paper's choices are the defaults of the model's own options, saved with the run: G's and
D's activations (`--g-activation`, `--d-activation`), G's normalisation (`--g-norm`) and extra
3x3 layers at G's last resolution (`--extra-layers`, the reference code's n_extra_layers)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ganforge import bounds
from ganforge.config import ModelOptions, TrainConfig, check_at_least, check_choice
from ganforge.errors import GanforgeError
from ganforge.models.gan import GANFamily, gan_family
from ganforge.models.layers import (
    ACTIVATIONS,
    MinibatchStd,
    activation_option,
    check_activations,
)

G_NORMS = ("batch", "instance", "none")
MAX_EXTRA_LAYERS = 16


@dataclass
class DCGANOptions(ModelOptions):
    g_activation: str = activation_option("G", "relu")  # the paper's
    d_activation: str = activation_option("D", "leaky_relu")
    g_norm: str = field(
        default="batch",
        metadata={"help": f"dcgan: normalisation in G's hidden layers ({', '.join(G_NORMS)})"},
    )
    extra_layers: int = field(
        default=0,
        metadata={"help": "dcgan: 3x3 convolution layers added at G's last hidden resolution"},
    )
    d_width: int = field(
        default=0,
        metadata={
            "help": "dcgan: D's base width, for a D weaker or stronger than G (0: --width; "
            "the papers' stacked-MNIST collapse uses a quarter or half of G's)"
        },
    )

    def check(self) -> None:
        check_activations(self)
        check_choice(self, "g_norm", G_NORMS)
        check_at_least(self, ("extra_layers", "d_width"), 0, "must be 0 or more")
        bounds.check_at_most("--extra-layers", self.extra_layers, MAX_EXTRA_LAYERS)
        bounds.check_at_most("--d-width", self.d_width, bounds.MAX_WIDTH)


def base_size(resolution: int, model: str = "dcgan") -> int:
    """The small map G starts from (7x7 for 28 px, 4x4 for powers of two); an error naming
    `model` (the convolutional models share the rule) otherwise."""
    for base in (4, 7):
        doublings = math.log2(resolution / base)
        if resolution >= base * 4 and doublings == int(doublings):
            return base
    raise GanforgeError(
        f"--resolution: {model} makes 4*2^k or 7*2^k pixels with k >= 2 (28, 32, 64, 128, ...), "
        f"not {resolution}"
    )


def _channel_plan(resolution: int, width: int) -> list[int]:
    """Widths from the small map up to the last hidden layer, halving at each doubling."""
    doublings = int(math.log2(resolution // base_size(resolution)))
    return [width * 2 ** (doublings - 1 - i) for i in range(doublings)]


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> images (N, C, R, R) in [-1, 1]."""

    def __init__(
        self,
        z_dim: int,
        img_resolution: int,
        img_channels: int,
        width: int = 64,
        activation: str = "relu",
        norm: str = "batch",
        extra_layers: int = 0,
    ):
        super().__init__()
        base = base_size(img_resolution)
        widths = _channel_plan(img_resolution, width)

        def block(layer: nn.Module, channels: int) -> list[nn.Module]:
            return [layer, _norm(norm, channels), ACTIVATIONS[activation]()]

        # The projection: a transposed conv on a 1x1 map is a dense layer to base x base.
        layers = block(nn.ConvTranspose2d(z_dim, widths[0], base, 1, 0, bias=False), widths[0])
        for w_in, w_out in zip(widths, widths[1:]):
            layers += block(nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), w_out)
        for _ in range(extra_layers):
            layers += block(nn.Conv2d(widths[-1], widths[-1], 3, 1, 1, bias=False), widths[-1])
        layers += [nn.ConvTranspose2d(widths[-1], img_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.z_dim = z_dim
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))

    def pre_tanh(self, z: torch.Tensor) -> torch.Tensor:
        """The output before the tanh (images = tanh of it): a VAE's Bernoulli pixel loss
        reads it as logits, which stays finite where the tanh saturates."""
        return self.net[:-1](z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """images (N, C, R, R) -> one real/fake logit per image (N,); with `outputs` > 1, that
    many logits per image (N, outputs) from the same last convolution (ACGAN's two heads).
    `minibatch_std` adds ProGAN's feature map before the last convolution."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        width: int = 64,
        outputs: int = 1,
        activation: str = "leaky_relu",
        minibatch_std: bool = False,
    ):
        super().__init__()
        base = base_size(img_resolution)
        widths = list(reversed(_channel_plan(img_resolution, width)))
        layers: list[nn.Module] = [
            nn.Conv2d(img_channels, widths[0], 4, 2, 1),
            ACTIVATIONS[activation](),
        ]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [
                nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(w_out),
                ACTIVATIONS[activation](),
            ]
        if minibatch_std:
            layers.append(MinibatchStd())
        # The last convolution covers the whole base map: one logit, no dense layer.
        layers += [nn.Conv2d(widths[-1] + minibatch_std, outputs, base, 1, 0)]
        self.net = nn.Sequential(*layers)
        self.outputs = outputs
        dcgan_init(self)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last hidden map (N, W, base, base), before the logit convolution."""
        return self.net[:-1](images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.net(images).flatten(1)
        return logits.view(-1) if self.outputs == 1 else logits


def dcgan_init(module: nn.Module) -> None:
    """Convolution weights ~ N(0, 0.02); batchnorm scale ~ N(1, 0.02), shift 0 (DCGAN paper)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def build_dcgan(config: TrainConfig, img_resolution: int, img_channels: int) -> GANFamily:
    options: DCGANOptions = config.model_options
    common = {"img_resolution": img_resolution, "img_channels": img_channels, "width": config.width}
    generator = DCGANGenerator(
        config.z_dim,
        **common,
        activation=options.g_activation,
        norm=options.g_norm,
        extra_layers=options.extra_layers,
    )
    discriminator = DCGANDiscriminator(
        img_resolution,
        img_channels * config.pack,  # PacGAN: a pack's images side by side along channels
        options.d_width or config.width,
        activation=options.d_activation,
        minibatch_std=config.minibatch_std,
    )
    return gan_family(config, generator, discriminator)

"""R3GAN (Huang et al., NeurIPS 2024, "The GAN is dead; long live the GAN! A Modern Baseline
GAN"): a small modern ResNet for G and D, with nothing of the old tricks left in it.

- Residual blocks x + f(x), f an inverted bottleneck: 1x1 expansion, a grouped 3x3
  convolution, 1x1 projection back (leaky ReLU 0.2 after the first two), as in ResNeXt and
  ConvNeXt. The trunk between blocks stays linear.
- No normalisation layer at all: the paper shows the relativistic loss with R1 and R2 trains
  this network stably without one. What keeps it trainable from the first step is fix-up
  initialisation (Zhang et al. 2019): the last convolution of every residual branch starts at
  zero, so each block starts as the identity, and the other layers of the branches start at
  He's scale times L^(-1/(2m-2)) (L residual blocks in the network, m = 3 layers per branch),
  the variance scaling of the paper's code.
- Resampling is bilinear: G doubles the size by bilinear interpolation after a 1x1
  convolution that changes the channels, D halves it by antialiased bilinear filtering
  (the [1, 3, 3, 1] low-pass filter) before one; no transposed or strided learned
  convolutions, whose uneven overlaps print checkerboards.
- G starts from a learned basis map (base x base, per channel) scaled per channel by a linear
  map of z; D ends in the mirror of it, a depthwise base x base convolution and a linear layer
  to one logit.

The widths come from --width (full resolution), doubling at each halving up to 4x; the
blocks per stage, the bottleneck expansion and the channels per group of the grouped
convolutions are the model's own options. The images are squashed by a tanh (ganforge's
samples are in [-1, 1]; the paper's G ends linearly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import bounds
from ganforge.config import ModelOptions, TrainConfig, check_at_least
from ganforge.models.dcgan import base_size
from ganforge.models.gan import GANFamily, gan_family
from ganforge.models.layers import MinibatchStd

# The paper's recipe where ganforge has the options. Its CIFAR-10 preset: the relativistic
# pairing loss (RpGAN) with zero-centred R1 and R2 at gamma 0.05 (-> 0.005), Adam with beta1 0
# and beta2 0.9 -> 0.99, lr 2e-4 (-> 5e-5) for both networks, no label smoothing, 64-d noise.
# Its schedules (and its EMA's) are not applied; width 16 keeps a step of 28 px images within
# a few times dcgan's at width 64 on a CPU (docs/reference/models).
R3GAN_DEFAULTS = {
    "width": 16,
    "z_dim": 64,
    "loss": "relativistic",
    "r1": 0.05,
    "r2": 0.05,
    "reg_decay": "cosine",  # gamma falls tenfold over the run, as the paper's schedule does
    "reg_final": 0.1,
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "beta1": 0.0,
    "beta2": 0.99,
    "label_smoothing": 0.0,
}

BRANCH_LAYERS = 3  # m: the convolutions of each residual branch
LEAKY_SLOPE = 0.2
ACTIVATION_GAIN = math.sqrt(2 / (1 + LEAKY_SLOPE**2))  # He's gain for leaky ReLU 0.2
MAX_WIDTH_FACTOR = 4  # the low-resolution stages are at most 4x --width wide
MAX_BLOCKS_PER_STAGE = 16
MAX_EXPANSION = 16


@dataclass
class R3GANOptions(ModelOptions):
    blocks_per_stage: int = field(
        default=1,
        metadata={"help": "r3gan: residual blocks at each resolution, in G and D (the paper: 2)"},
    )
    expansion: int = field(
        default=2,
        metadata={
            "help": "r3gan: channel expansion inside each block's inverted bottleneck (the "
            "paper's 2)"
        },
    )
    group_channels: int = field(
        default=16,
        metadata={
            "help": "r3gan: channels per group of the grouped 3x3 convolutions (the paper's 16; "
            "a block of E expanded channels has E / this groups, its cardinality; 1: depthwise)"
        },
    )

    def check(self) -> None:
        check_at_least(self, ("blocks_per_stage", "expansion", "group_channels"), 1)
        bounds.check_at_most("--blocks-per-stage", self.blocks_per_stage, MAX_BLOCKS_PER_STAGE)
        bounds.check_at_most("--expansion", self.expansion, MAX_EXPANSION)
        bounds.check_at_most("--group-channels", self.group_channels, bounds.MAX_WIDTH)


def stage_widths(resolution: int, width: int) -> list[int]:
    """Each stage's channels, from G's base map to the full resolution (D: the reverse):
    `width` at full resolution, doubling at each halving up to MAX_WIDTH_FACTOR x `width`,
    as the paper's widths narrow only towards the image."""
    stages = int(math.log2(resolution // base_size(resolution, "r3gan"))) + 1
    return [width * 2 ** min(stages - 1 - i, 2) for i in range(stages)]


def group_count(channels: int, group_channels: int) -> int:
    """The most groups of at least `group_channels` channels each that split `channels`
    evenly (1 where a block is narrower than one group)."""
    most = max(1, channels // group_channels)
    return next(groups for groups in range(most, 0, -1) if channels % groups == 0)


def msr_init(layer: nn.Conv2d | nn.Linear, gain: float = 1.0) -> nn.Module:
    """Weights ~ N(0, (gain / sqrt(fan_in))^2), biases 0: He's initialisation with the gain of
    the activation that follows (1: a linear layer keeps the variance of its input)."""
    fan_in = layer.weight[0].numel()
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class ResidualBlock(nn.Module):
    """x + f(x) at a constant size: f is 1x1 expand -> leaky ReLU -> grouped 3x3 -> leaky
    ReLU -> 1x1 project, no normalisation. `depth` is L, the residual blocks of the whole
    network, for fix-up's scaling; with `fixup` the projection starts at zero (the block is
    the identity), without it (--spectral-norm, which divides by the weight's norm: 0/0) at
    He's scale."""

    def __init__(
        self,
        channels: int,
        expansion: int,
        group_channels: int,
        depth: int,
        fixup: bool = True,
    ):
        super().__init__()
        expanded = channels * expansion
        gain = ACTIVATION_GAIN * depth ** (-1 / (2 * BRANCH_LAYERS - 2))
        groups = group_count(expanded, group_channels)
        self.expand = msr_init(nn.Conv2d(channels, expanded, 1), gain)
        self.conv = msr_init(nn.Conv2d(expanded, expanded, 3, padding=1, groups=groups), gain)
        self.project = nn.Conv2d(expanded, channels, 1, bias=False)
        if fixup:
            nn.init.zeros_(self.project.weight)
        else:
            msr_init(self.project)
        self.activation = nn.LeakyReLU(LEAKY_SLOPE)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """f(x), the residual the block adds."""
        return self.project(self.activation(self.conv(self.activation(self.expand(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


def channel_change(channels_in: int, channels_out: int) -> nn.Module:
    """A 1x1 convolution where the trunk's channels change between stages (else nothing)."""
    if channels_in == channels_out:
        return nn.Identity()
    return msr_init(nn.Conv2d(channels_in, channels_out, 1, bias=False))


class Upsample(nn.Module):
    """Channels changed at the low resolution (cheaper), then bilinear x2."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.channels = channel_change(channels_in, channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.channels(x), scale_factor=2, mode="bilinear")


class Downsample(nn.Module):
    """Bilinear /2, antialiased, then channels changed at the low resolution."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.channels = channel_change(channels_in, channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channels(bilinear_halve(x))


def bilinear_halve(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H/2, W/2): each output pixel the [1, 3, 3, 1]/8 x [1, 3, 3, 1]/8
    blend of the 4x4 pixels around it (edges repeated), the adjoint of G's bilinear x2 and
    what antialiased bilinear interpolation computes inside the image. A fixed depthwise
    filter rather than F.interpolate(antialias=True), which has no bf16 kernel on CPUs."""
    taps = x.new_tensor([1.0, 3.0, 3.0, 1.0]) / 8
    kernel = (taps[:, None] * taps[None, :]).expand(x.shape[1], 1, 4, 4)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kernel, stride=2, groups=x.shape[1])


class GenerativeBasis(nn.Module):
    """z (N, z_dim) -> (N, C, size, size): a learned map per channel, N(0, 1) at first, scaled
    by a linear function of z (the paper's G input; a 7x7 basis for 28 px)."""

    def __init__(self, z_dim: int, channels: int, size: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, size, size))
        self.linear = msr_init(nn.Linear(z_dim, channels, bias=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.basis * self.linear(z)[:, :, None, None]


class DiscriminativeBasis(nn.Module):
    """(N, C, size, size) -> one logit per image (N,): a depthwise size x size convolution
    (one learned map per channel, the mirror of G's basis) and a linear layer."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.conv = msr_init(nn.Conv2d(channels, channels, size, groups=channels, bias=False))
        self.linear = msr_init(nn.Linear(channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.conv(x).flatten(1)).view(-1)


def _stage_blocks(
    blocks: int, channels: int, expansion: int, group_channels: int, depth: int, fixup: bool = True
) -> list[nn.Module]:
    return [ResidualBlock(channels, expansion, group_channels, depth, fixup) for _ in range(blocks)]


class R3GANGenerator(nn.Module):
    """z (N, z_dim) -> images (N, C, R, R) in [-1, 1]: the basis, then per stage an
    up-sampling (none at the base size) and `blocks_per_stage` residual blocks, then a 1x1
    convolution to the image's channels and a tanh."""

    def __init__(
        self,
        z_dim: int,
        img_resolution: int,
        img_channels: int,
        width: int = 16,
        blocks_per_stage: int = 1,
        expansion: int = 2,
        group_channels: int = 16,
    ):
        super().__init__()
        widths = stage_widths(img_resolution, width)
        depth = blocks_per_stage * len(widths)
        self.basis = GenerativeBasis(z_dim, widths[0], base_size(img_resolution, "r3gan"))
        stages = []
        for i, channels in enumerate(widths):
            upsample = [Upsample(widths[i - 1], channels)] if i else []
            blocks = _stage_blocks(blocks_per_stage, channels, expansion, group_channels, depth)
            stages.append(nn.Sequential(*upsample, *blocks))
        self.stages = nn.Sequential(*stages)
        self.to_image = msr_init(nn.Conv2d(widths[-1], img_channels, 1))
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(self.stages(self.basis(z))))


class R3GANDiscriminator(nn.Module):
    """images (N, C, R, R) -> one real/fake logit per image (N,): a 1x1 convolution from the
    image, then per stage `blocks_per_stage` residual blocks and a down-sampling (none at the
    base size), then the basis. `minibatch_std` adds ProGAN's feature map before the basis;
    `fixup` as in ResidualBlock."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        width: int = 16,
        blocks_per_stage: int = 1,
        expansion: int = 2,
        group_channels: int = 16,
        minibatch_std: bool = False,
        fixup: bool = True,
    ):
        super().__init__()
        widths = stage_widths(img_resolution, width)[::-1]
        depth = blocks_per_stage * len(widths)
        layers: list[nn.Module] = [msr_init(nn.Conv2d(img_channels, widths[0], 1))]
        for i, channels in enumerate(widths):
            blocks = _stage_blocks(
                blocks_per_stage, channels, expansion, group_channels, depth, fixup
            )
            downsample = [Downsample(channels, widths[i + 1])] if i + 1 < len(widths) else []
            layers.append(nn.Sequential(*blocks, *downsample))
        if minibatch_std:
            layers.append(MinibatchStd())
        self.body = nn.Sequential(*layers)
        self.basis = DiscriminativeBasis(
            widths[-1] + minibatch_std, base_size(img_resolution, "r3gan")
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last hidden map (N, W, base, base), before the basis."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.basis(self.body(images))


def build_r3gan(config: TrainConfig, img_resolution: int, img_channels: int) -> GANFamily:
    options: R3GANOptions = config.model_options
    architecture = {
        "img_resolution": img_resolution,
        "width": config.width,
        "blocks_per_stage": options.blocks_per_stage,
        "expansion": options.expansion,
        "group_channels": options.group_channels,
    }
    generator = R3GANGenerator(config.z_dim, img_channels=img_channels, **architecture)
    discriminator = R3GANDiscriminator(
        img_channels=img_channels * config.pack,  # PacGAN: a pack's images along channels
        minibatch_std=config.minibatch_std,
        fixup=not config.spectral_norm,
        **architecture,
    )
    return gan_family(config, generator, discriminator)

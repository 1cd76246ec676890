"""Pix2Pix (Isola et al. 2017): image-to-image translation with a conditional GAN.

G is a U-Net: an encoder of strided 4x4 convolutions down to a 1x1 map, and a decoder of
transposed convolutions back up, each decoder level joined (concatenated) with the encoder
map of the same size, so that fine detail of the source need not squeeze through the
bottleneck; dropout in the innermost decoder blocks is G's only noise. D is a PatchGAN: a
fully convolutional classifier of the (source, image) pair that gives one logit per 70x70
patch at 256 px, judging local texture while the L1 loss takes care of the low frequencies.
The objective: adversarial + l1_weight * |G(source) - target|, lambda = 100 in the paper.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ganforge.config import ModelOptions, TrainConfig, check_at_least, check_choice
from ganforge.data import to_model_range
from ganforge.errors import GanforgeError
from ganforge.i18n import N_
from ganforge.models.dcgan import dcgan_init
from ganforge.models.family import PAIRED_TRANSLATOR, Batch
from ganforge.models.gan import GANFamily, Remedies, configure_discriminator, gan_remedies
from ganforge.models.kept_fakes import KeptFakes, fakes_for_d, kept_fakes
from ganforge.sampling import translation_triplets

RESOLUTIONS = (32, 64, 128, 256)  # 32: for fast tests and demos; the paper's is 256
MAX_WIDTH_FACTOR = 8  # channels grow to 8 x width, then stay (the paper's C512 layers)
DROPOUT_BLOCKS = 3  # innermost decoder blocks with dropout (the paper's CD512 x 3)
PREVIEW_PAIRS = 8  # rows of source | output | target in the progress grids
NORMS = ("batch", "instance")


@dataclass
class Pix2PixOptions(ModelOptions):
    l1_weight: float = field(
        default=100.0, metadata={"help": "pix2pix: weight lambda of the L1 loss to the target"}
    )
    norm: str = field(
        default="batch", metadata={"help": "pix2pix: batch or instance normalisation"}
    )

    def check(self) -> None:
        check_at_least(self, ("l1_weight",), 0, "must be >= 0")
        check_choice(self, "norm", NORMS)


def unet_depth(resolution: int) -> int:
    """Encoder levels from `resolution` down to 1x1 (8 at 256 px, as in the paper)."""
    if resolution not in RESOLUTIONS:
        sizes = ", ".join(map(str, RESOLUTIONS))
        raise GanforgeError(
            f"--resolution: pix2pix's U-Net takes {sizes} pixels, not {resolution} "
            f"(e.g. --resolution {min(r for r in RESOLUTIONS if r >= min(resolution, 256))})"
        )
    return int(math.log2(resolution))


def norm_layer(norm: str):
    """The normalisation layer class for --norm: batchnorm, or instance norm without affine
    parameters or running statistics (as pix2pix's code)."""
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    raise GanforgeError(f"--norm: '{norm}' is not one of batch, instance")


class UNetGenerator(nn.Module):
    """sources (N, C, R, R) in [-1, 1] -> images (N, C, R, R) in [-1, 1]."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        width: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
    ):
        super().__init__()
        depth = unet_depth(img_resolution)
        Norm = norm_layer(norm)
        widths = [width * min(2**i, MAX_WIDTH_FACTOR) for i in range(depth)]
        self.encoder = nn.ModuleList()
        for level, w_out in enumerate(widths):
            w_in = img_channels if level == 0 else widths[level - 1]
            # No norm on the outermost level (as DCGAN) nor the 1x1 bottleneck (a map of one
            # pixel has no instance statistics)
            normed = 0 < level < depth - 1
            layers: list[nn.Module] = [] if level == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(w_in, w_out, 4, 2, 1, bias=not normed))
            if normed:
                layers.append(Norm(w_out))
            self.encoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList()
        for level in range(depth - 1, 0, -1):  # innermost first; each output joins a skip
            w_in = widths[level] * (1 if level == depth - 1 else 2)
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(w_in, widths[level - 1], 4, 2, 1, bias=False),
                Norm(widths[level - 1]),
            ]
            if len(self.decoder) < DROPOUT_BLOCKS and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))
        self.output = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], img_channels, 4, 2, 1), nn.Tanh()
        )
        dcgan_init(self)

    def forward(self, sources: torch.Tensor) -> torch.Tensor:
        skips = []
        x = sources
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck
        for block in self.decoder:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.output(x)


class PatchDiscriminator(nn.Module):
    """pairs (N, 2C, R, R), a source and an image concatenated on channels (or, with
    `inputs` 1, single images (N, C, R, R)) -> a map of real/fake logits (N, 1, h, w), one
    per overlapping patch.

    `layers` strided 4x4 convolutions, then two of stride 1 (pix2pix's n_layers = 3: 70x70
    receptive field, a 30x30 map at 256 px; 2x2 at 32 px)."""

    def __init__(
        self,
        img_resolution: int,
        img_channels: int,
        width: int = 64,
        norm: str = "batch",
        layers: int = 3,
        inputs: int = 2,
    ):
        super().__init__()
        Norm = norm_layer(norm)
        widths = [width * min(2**i, MAX_WIDTH_FACTOR) for i in range(layers + 1)]
        modules: list[nn.Module] = [
            nn.Conv2d(inputs * img_channels, widths[0], 4, 2, 1),
            nn.LeakyReLU(0.2),
        ]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            modules += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1, bias=False),
                Norm(widths[i]),
                nn.LeakyReLU(0.2),
            ]
        modules.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*modules)
        if patch_map_size(img_resolution, layers) < 1:
            raise GanforgeError(
                f"--resolution: {img_resolution} pixels is too small for a 70x70 PatchGAN"
            )
        dcgan_init(self)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.net(pairs)


def patch_map_size(resolution: int, layers: int = 3) -> int:
    """The side of PatchDiscriminator's logit map for `resolution` pixels."""
    size = resolution
    for _ in range(layers):
        size = (size + 2 - 4) // 2 + 1
    return size - 2  # two 4x4 convolutions of stride 1, padding 1: one pixel less each


def pair(sources: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """What the PatchGAN judges: source and image concatenated on channels."""
    return torch.cat([sources, images], dim=1)


class Pix2PixFamily(GANFamily):
    """A U-Net translator and a PatchGAN, with GANFamily's phases (D, then G on the same
    batch), adversarial losses and remedies applied per patch to (source, image) pairs.

    Logged statistics: GANFamily's (loss_d, d_real, d_fake, d_accuracy over patches; loss_g
    the adversarial part only, d_fake_g), and loss_l1: the mean |G(source) - target| in the
    model's [-1, 1] range. The generator phase minimises loss_g + l1_weight * loss_l1.
    """

    kind = PAIRED_TRANSLATOR
    curve_panels = ((N_("Losses"), ("loss_d", "loss_g", "loss_l1")), *GANFamily.curve_panels[1:])

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        l1_weight: float = 100.0,
        g_loss: str = "non-saturating",
        label_smoothing: float = 0.0,
        remedies: Remedies | None = None,
        kept: KeptFakes | None = None,
    ):
        remedies = remedies or Remedies()
        if "color" in remedies.diffaugment:
            # D sees source and image stacked on channels: saturation would mix the two
            raise GanforgeError(
                "--diffaugment: pix2pix takes translation and cutout (applied alike to the "
                "source and the image of a pair), not color"
            )
        super().__init__(
            generator,
            discriminator,
            z_dim=0,
            g_loss=g_loss,
            label_smoothing=label_smoothing,
            remedies=remedies,
            kept=kept,
        )
        self.l1_weight = l1_weight

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """No noise: (n, 0). The generator's dropout is its only randomness."""
        return torch.empty(n, 0, device=device)

    def sample(
        self, network: nn.Module, z: torch.Tensor | None, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """G(sources): `condition` holds the source images; there is no noise to take."""
        if condition is None:
            raise GanforgeError("a translator needs the source images to translate")
        return network(condition)

    def fixed_conditions(self, dataset, picks: torch.Tensor) -> torch.Tensor:
        """The source images of the picked pairs."""
        return to_model_range(dataset.sources_at(picks).cpu())

    def fixed_examples(self, dataset, held_out, seed: int, n: int) -> Batch:
        """At most `n` (and PREVIEW_PAIRS) fixed pairs (float [-1, 1], CPU), held out where the
        data has a test split, picked by their own seeded generator (the training RNG is
        untouched)."""
        dataset = held_out()
        n = min(n, PREVIEW_PAIRS, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
        picks = order[:n].sort().values
        return {
            "sources": to_model_range(dataset.sources_at(picks).cpu()),
            "images": to_model_range(dataset.images_at(picks).cpu()),
        }

    def preview(self, network: nn.Module, n: int, seed: int, examples: Batch | None = None):
        """Rows of source | output | target for the fixed example pairs."""
        if examples is None:
            raise GanforgeError("a translator's preview needs example pairs")
        return translation_triplets(self, network, examples), 3

    def phase_loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        sources, real = batch["sources"], batch["images"]
        if phase == "discriminator":
            (fake,) = fakes_for_d(
                self.kept_fakes, self.generator, real, lambda: (self.generator(sources),)
            )
            return self._discriminator_loss(pair(sources, real), pair(sources, fake))
        if phase == "generator":
            kept = self.kept_fakes.take(real) if self.kept_fakes is not None else None
            fake = self.generator(sources) if kept is None else kept[0]
            fake_logits = self.discriminate(pair(sources, fake))
            adversarial = self.adversarial_g_loss(
                fake_logits, lambda: self.discriminate(pair(sources, real))
            )
            l1 = (fake - real).abs().mean()
            return adversarial + self.l1_weight * l1, {
                "loss_g": adversarial.detach(),
                "loss_l1": l1.detach(),
                "d_fake_g": torch.sigmoid(fake_logits).mean().detach(),
            }
        raise ValueError(f"Pix2PixFamily has no phase '{phase}'")


def build_pix2pix(config: TrainConfig, img_resolution: int, img_channels: int) -> Pix2PixFamily:
    options: Pix2PixOptions = config.model_options
    common = {
        "img_resolution": img_resolution,
        "img_channels": img_channels,
        "width": config.width,
        "norm": options.norm,
    }
    return Pix2PixFamily(
        UNetGenerator(**common),
        configure_discriminator(PatchDiscriminator(**common), config),
        l1_weight=options.l1_weight,
        g_loss=config.g_loss,
        label_smoothing=config.label_smoothing,
        remedies=gan_remedies(config),
        kept=kept_fakes(config),
    )

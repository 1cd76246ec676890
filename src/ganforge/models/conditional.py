"""Class-conditional GANs: the label says what to draw.

- cgan (Mirza & Osindero 2014, convolutional): G gets the one-hot label joined to the noise,
  and class-conditional batchnorm in every layer (so the label modulates every layer, not only
  the input); D gets it as C constant feature maps joined to the image (`--cond concat`),
  or projects it onto its features (`--cond projection`, Miyato & Koyama 2018):
  logit = psi(phi(x)) + <embed(y), phi(x)>.
- acgan (Odena et al. 2017): the same G; D does not see the label but has a second head that
  classifies images into the C classes, and G is trained to make its fakes classifiable as the
  asked-for class. The head learns from real images only unless `--aux-fakes` (the paper's
  version): a head that also learns "this fake is a 3" adapts to G's poor 3s instead of
  correcting them (measured: worst-class accuracy 74% -> 91% at 1,000 steps on mnist-mini).

The training objective lives in GANFamily (gan.py); these are the networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ModelOptions, TrainConfig, check_at_least, check_choice
from ganforge.errors import GanforgeError
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.gan import GANFamily, gan_family

CONDITIONINGS = ("concat", "projection")  # how cgan's D takes the label


@dataclass
class CGANOptions(ModelOptions):
    cond: str = field(
        default="concat",
        metadata={
            "help": "cgan: how D sees the label: concat (label maps joined to its input) or "
            "projection (Miyato & Koyama 2018)"
        },
    )

    def check(self) -> None:
        check_choice(self, "cond", CONDITIONINGS)


@dataclass
class ACGANOptions(ModelOptions):
    aux_weight: float = field(
        default=1.0, metadata={"help": "acgan: weight of the auxiliary classification loss"}
    )
    aux_fakes: bool = field(
        default=False,
        metadata={
            "help": "acgan: train D's class head on fakes too (Odena et al.'s original; by "
            "default real images only, so the head cannot adapt to G's mistakes)"
        },
    )

    def check(self) -> None:
        check_at_least(self, ("aux_weight",), 0, "must be >= 0")


class ClassBatchNorm2d(nn.Module):
    """Batchnorm whose scale and shift are looked up per class (conditional batchnorm, de Vries
    et al. 2017; SN-GAN, BigGAN): the label modulates every layer of G, not only its input."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(features, affine=False)
        self.scale = nn.Embedding(num_classes, features)
        self.shift = nn.Embedding(num_classes, features)
        nn.init.normal_(self.scale.weight, 1.0, 0.02)  # as dcgan_init does for batchnorm
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scale = self.scale(labels)[:, :, None, None]
        shift = self.shift(labels)[:, :, None, None]
        return self.norm(x) * scale + shift


class ConditionalGenerator(nn.Module):
    """(z (N, z_dim), labels (N,)) -> images: a DCGAN generator fed [z, one_hot(label)], whose
    batchnorms are class-conditional (ClassBatchNorm2d)."""

    def __init__(
        self, z_dim: int, num_classes: int, img_resolution: int, img_channels: int, width: int
    ):
        super().__init__()
        self.num_classes = num_classes
        self.net = DCGANGenerator(z_dim + num_classes, img_resolution, img_channels, width)
        layers = self.net.net
        for index, layer in enumerate(layers):
            if isinstance(layer, nn.BatchNorm2d):
                layers[index] = ClassBatchNorm2d(layer.num_features, num_classes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(labels, self.num_classes).to(z.dtype)
        x = torch.cat([z, one_hot], dim=1).view(z.shape[0], -1, 1, 1)
        for layer in self.net.net:
            x = layer(x, labels) if isinstance(layer, ClassBatchNorm2d) else layer(x)
        return x


class ConcatDiscriminator(nn.Module):
    """(images, labels) -> logits (N,): the one-hot label as C constant maps joined to the
    image channels, then a DCGAN discriminator."""

    def __init__(self, num_classes: int, img_resolution: int, img_channels: int, width: int):
        super().__init__()
        self.num_classes = num_classes
        self.net = DCGANDiscriminator(img_resolution, img_channels + num_classes, width)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        n, _, height, width = images.shape
        one_hot = F.one_hot(labels, self.num_classes).to(images.dtype)
        maps = one_hot.view(n, self.num_classes, 1, 1).expand(n, self.num_classes, height, width)
        return self.net(torch.cat([images, maps], dim=1))


class ProjectionDiscriminator(nn.Module):
    """(images, labels) -> logits (N,): the unconditional DCGAN logit plus the inner product
    of a learned class embedding with the globally sum-pooled last hidden features."""

    def __init__(self, num_classes: int, img_resolution: int, img_channels: int, width: int):
        super().__init__()
        self.net = DCGANDiscriminator(img_resolution, img_channels, width)
        features = self.net.net[-1].in_channels
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self.net.features(images)
        unconditional = self.net.net[-1](hidden).view(-1)
        pooled = hidden.sum(dim=(2, 3))
        return unconditional + (self.embed(labels) * pooled).sum(dim=1)


def auxiliary_classifier_discriminator(
    num_classes: int, img_resolution: int, img_channels: int, width: int
) -> DCGANDiscriminator:
    """ACGAN's D: images -> (N, 1 + C): the real/fake logit, then C class logits."""
    return DCGANDiscriminator(img_resolution, img_channels, width, outputs=1 + num_classes)


def _classes(config: TrainConfig) -> int:
    if config.num_classes < 2:
        raise GanforgeError(f"--num-classes: {config.model} needs 2 or more classes")
    return config.num_classes


def build_cgan(config: TrainConfig, img_resolution: int, img_channels: int) -> GANFamily:
    classes = _classes(config)
    common = {"img_resolution": img_resolution, "img_channels": img_channels, "width": config.width}
    if config.model_options.cond == "projection":
        discriminator = ProjectionDiscriminator(classes, **common)
    else:
        discriminator = ConcatDiscriminator(classes, **common)
    generator = ConditionalGenerator(config.z_dim, classes, **common)  # after D, as always
    return gan_family(config, generator, discriminator, num_classes=classes, d_takes_labels=True)


def build_acgan(config: TrainConfig, img_resolution: int, img_channels: int) -> GANFamily:
    options: ACGANOptions = config.model_options
    classes = _classes(config)
    if options.aux_weight <= 0:
        # without the class loss nothing would tie G's samples to the label it is given
        raise GanforgeError(
            "--aux-weight: acgan learns the classes through its auxiliary classifier, so its "
            "weight must be above 0 (for a conditional GAN without one: --model cgan)"
        )
    common = {"img_resolution": img_resolution, "img_channels": img_channels, "width": config.width}
    # D first, then G: the order of the random initialisation (the same seed, the same run)
    discriminator = auxiliary_classifier_discriminator(classes, **common)
    return gan_family(
        config,
        ConditionalGenerator(config.z_dim, classes, **common),
        discriminator,
        num_classes=classes,
        class_head=True,
        aux_weight=options.aux_weight,
        aux_fakes=options.aux_fakes,
    )

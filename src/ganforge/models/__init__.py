"""Model families, found by name. Importing this package registers the built-in models."""

from __future__ import annotations

from ganforge.config import TrainConfig
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.family import Batch, ModelFamily, Phase
from ganforge.models.gan import GANFamily
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator
from ganforge.models.registry import build_model, list_models, register_model


def _gan_builder(generator_cls, discriminator_cls):
    def build(config: TrainConfig, img_resolution: int, img_channels: int) -> GANFamily:
        common = {
            "img_resolution": img_resolution,
            "img_channels": img_channels,
            "width": config.width,
        }
        return GANFamily(
            generator_cls(z_dim=config.z_dim, **common),
            discriminator_cls(**common),
            z_dim=config.z_dim,
            g_loss=config.g_loss,
            label_smoothing=config.label_smoothing,
        )

    return build


register_model("mlp", _gan_builder(MLPGenerator, MLPDiscriminator))
register_model("dcgan", _gan_builder(DCGANGenerator, DCGANDiscriminator))

__all__ = [
    "Batch",
    "GANFamily",
    "ModelFamily",
    "Phase",
    "build_model",
    "list_models",
    "register_model",
]

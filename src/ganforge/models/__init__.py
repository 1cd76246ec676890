"""Model families, found by name. Importing this package registers the built-in models: each
is one file (its networks, its family or a family it shares, its own options, its builder)
plus one `register_model` line here."""

from __future__ import annotations

from ganforge.models.conditional import ACGANOptions, CGANOptions, build_acgan, build_cgan
from ganforge.models.cyclegan import DEFAULTS as CYCLEGAN_DEFAULTS
from ganforge.models.cyclegan import UNPAIRED_TRANSLATOR, CycleGANOptions, build_cyclegan
from ganforge.models.dcgan import DCGANOptions, build_dcgan
from ganforge.models.family import (
    AUTOENCODER,
    CLASS_CONDITIONAL,
    DATA_KINDS,
    PAIRED_TRANSLATOR,
    POINTS,
    Batch,
    Kind,
    ModelFamily,
    Phase,
)
from ganforge.models.gan import GANFamily, Remedies
from ganforge.models.infogan import DEFAULTS as INFOGAN_DEFAULTS
from ganforge.models.infogan import LATENT_CODES, InfoGANOptions, build_infogan
from ganforge.models.mlp import MLPOptions, build_mlp
from ganforge.models.pix2pix import Pix2PixOptions, build_pix2pix
from ganforge.models.r3gan import R3GAN_DEFAULTS, R3GANOptions, build_r3gan
from ganforge.models.registry import (
    build_model,
    describe_model,
    list_models,
    model_defaults,
    model_kind,
    point_models,
    register_model,
    run_kind,
)
from ganforge.models.vae import VAEFamily, VAEOptions, build_vae

# The convolutional GANs learn at four times the shared default rates (G still at twice D's),
# measured in the packaged classifiers' features at the demo budget:
# - dcgan, 1,500 steps of 64 (benchmarks/modern_baseline.py, lr-* variants; docs/reference/models):
#   FID 209 -> 159 on mnist-mini and 206 -> 145 on Fashion-MNIST, every class on both, ahead of
#   2x rates, other EMA decays, batch sizes, no smoothing and a cosine decay;
# - cgan and acgan, 1,000 steps of 64 on mnist-mini (docs/reference/models, conditional
#   models): class accuracy 82% -> 96% and FID 98 -> 17 for cgan, 88% -> 96% for acgan.
CONVOLUTIONAL_RATES = {"lr_g": 1.6e-3, "lr_d": 8e-4}
# dcgan's Adam also forgets faster (beta1 0, beta2 0.99, as R3GAN and StyleGAN2 train): with the
# rates above it gains again on both datasets and both seeds, every class still found
# (mnist-mini FID 159/153 -> 142/141, Fashion-MNIST 145/147 -> 124/132, seeds 0/1).
DCGAN_DEFAULTS = {**CONVOLUTIONAL_RATES, "beta1": 0.0, "beta2": 0.99}

register_model("mlp", build_mlp, options=MLPOptions, points=True)
register_model("dcgan", build_dcgan, options=DCGANOptions, defaults=DCGAN_DEFAULTS)
register_model("pix2pix", build_pix2pix, kind=PAIRED_TRANSLATOR, options=Pix2PixOptions)
register_model(
    "cgan", build_cgan, kind=CLASS_CONDITIONAL, defaults=CONVOLUTIONAL_RATES, options=CGANOptions
)
register_model(
    "acgan",
    build_acgan,
    kind=CLASS_CONDITIONAL,
    defaults=CONVOLUTIONAL_RATES,
    options=ACGANOptions,
)
register_model("r3gan", build_r3gan, options=R3GANOptions, defaults=R3GAN_DEFAULTS)
register_model(
    "infogan", build_infogan, kind=LATENT_CODES, defaults=INFOGAN_DEFAULTS, options=InfoGANOptions
)
register_model("vae", build_vae, kind=AUTOENCODER, options=VAEOptions)
register_model(
    "cyclegan",
    build_cyclegan,
    kind=UNPAIRED_TRANSLATOR,
    defaults=CYCLEGAN_DEFAULTS,
    options=CycleGANOptions,
)

__all__ = [
    "AUTOENCODER",
    "CLASS_CONDITIONAL",
    "DATA_KINDS",
    "PAIRED_TRANSLATOR",
    "POINTS",
    "Batch",
    "GANFamily",
    "LATENT_CODES",
    "Kind",
    "ModelFamily",
    "Phase",
    "Remedies",
    "VAEFamily",
    "build_model",
    "describe_model",
    "list_models",
    "model_defaults",
    "model_kind",
    "point_models",
    "register_model",
    "run_kind",
]

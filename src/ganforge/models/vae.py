"""The variational autoencoder (Kingma & Welling 2014), the GANs' baseline: an encoder maps an
image to a Gaussian posterior q(z|x) = N(mu, sigma^2), a code is drawn from it by the
reparameterisation z = mu + sigma * eps (so gradients reach mu and sigma), and a decoder of the
DCGAN generator's shape maps it back. The loss is the negative ELBO per image: reconstruction
(summed over pixels) + beta * KL(q(z|x) || N(0, I)) (beta-VAE, Higgins et al. 2017, for beta != 1).
Samples are decoded prior draws z ~ N(0, I): blurrier than a GAN's, but every mode is covered,
since the reconstruction term makes the model explain every training image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import ModelOptions, TrainConfig, check_at_least, check_choice, flag_name
from ganforge.data import to_model_range, to_uint8
from ganforge.errors import GanforgeError
from ganforge.i18n import N_
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.family import AUTOENCODER, Batch, ModelFamily, Phase
from ganforge.modules import device_of, eval_mode
from ganforge.report.grid import paired_rows

VAE_PHASES = (Phase("vae", network=("encoder", "decoder")),)
RECONSTRUCTIONS = ("bce", "mse")


@dataclass
class VAEOptions(ModelOptions):
    recon: str = field(
        default="bce",
        metadata={
            "help": "vae: reconstruction loss, bce (pixels as Bernoulli probabilities in [0, 1]) "
            "or mse (squared error in [0, 1]); summed over pixels"
        },
    )
    beta: float = field(
        default=1.0,
        metadata={"help": "vae: weight of the KL term (beta-VAE; not Adam's --beta1/--beta2)"},
    )

    def check(self) -> None:
        check_choice(self, "recon", RECONSTRUCTIONS)
        check_at_least(self, ("beta",), 0, "must be >= 0")


class ConvEncoder(nn.Module):
    """images (N, C, R, R) in [-1, 1] -> posterior mean and log-variance, each (N, z_dim).

    DCGAN's discriminator trunk (strided convolutions, no dense layer) whose last convolution
    gives 2 * z_dim numbers per image instead of one logit."""

    def __init__(self, z_dim: int, img_resolution: int, img_channels: int, width: int = 64):
        super().__init__()
        self.trunk = DCGANDiscriminator(img_resolution, img_channels, width, outputs=2 * z_dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.trunk(images).chunk(2, dim=1)
        return mu, logvar


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) (or `noise`): differentiable in mu and sigma."""
    eps = torch.randn_like(mu) if noise is None else noise
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, in nats, in closed form:
    1/2 * sum(sigma^2 + mu^2 - 1 - log sigma^2)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(dim=1)


def reconstruction_loss(pre_tanh: torch.Tensor, images: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image reconstruction loss (N,), summed over pixels, of the decoder output
    tanh(`pre_tanh`) against `images` in [-1, 1]; both read as pixels in [0, 1].

    "bce": Bernoulli likelihood; (tanh(a) + 1) / 2 = sigmoid(2a), so 2a are exact logits.
    "mse": squared error."""
    targets = (images + 1) / 2
    if kind == "bce":
        loss = F.binary_cross_entropy_with_logits(2 * pre_tanh, targets, reduction="none")
    elif kind == "mse":
        loss = ((torch.tanh(pre_tanh) + 1) / 2 - targets).pow(2)
    else:
        raise GanforgeError(f"--recon: '{kind}' is not one of bce, mse")
    return loss.flatten(1).sum(dim=1)


RECONSTRUCTIONS_FILE = "reconstructions.png"  # in RUN/samples/, at the end of training
RECONSTRUCTION_EXAMPLES = 32  # real images in that grid


class VAEFamily(ModelFamily):
    """An encoder and a decoder trained together in one phase, "vae", on the negative ELBO.

    Logged statistics (means over the batch, per image): loss_vae (recon + beta * kl), recon,
    kl. The decoder is the sampler (it gets the EMA copy); it learns at --lr-g, the encoder at
    --lr-d."""

    phases = VAE_PHASES
    sampler = "decoder"
    kind = AUTOENCODER
    learning_rates = {"decoder": "lr_g"}
    curve_panels = ((N_("VAE loss per image (recon + beta * KL)"), ("loss_vae", "recon", "kl")),)
    progress_stats = ("loss_vae",)

    def __init__(
        self,
        encoder: ConvEncoder,
        decoder: DCGANGenerator,
        z_dim: int,
        recon: str = "bce",
        beta: float = 1.0,
    ):
        self.networks = nn.ModuleDict({"encoder": encoder, "decoder": decoder})
        self.z_dim = z_dim
        self.recon = recon
        self.beta = beta

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def sample(
        self, network: nn.Module, z: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        return network(z)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and log-variance (N, z_dim) for images in [-1, 1]."""
        return self.networks["encoder"](images)

    def encoded_codes(self, images: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.networks["encoder"]):
            return self.encode(images)[0]

    def phase_loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if phase != "vae":
            raise ValueError(f"VAEFamily has no phase '{phase}'")
        images = batch["images"]
        mu, logvar = self.encode(images)
        z = reparameterize(mu, logvar)
        recon = reconstruction_loss(self.networks["decoder"].pre_tanh(z), images, self.recon)
        kl = gaussian_kl(mu, logvar)
        loss = (recon + self.beta * kl).mean()
        stats = {
            "loss_vae": loss.detach(),
            "recon": recon.mean().detach(),
            "kl": kl.mean().detach(),
        }
        return loss, stats

    def reconstruct(self, decoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) images -> uint8 decoder(mu(images)) on the CPU: through the
        posterior mean (no sampling noise: the same image, the same reconstruction), in eval
        mode on the decoder's device."""
        encoder = self.networks["encoder"]
        with eval_mode(encoder, decoder):
            mu, _ = self.encode(to_model_range(images).to(device_of(decoder)))
            return to_uint8(decoder(mu)).cpu()

    def fixed_examples(self, dataset, held_out, seed: int, n: int) -> Batch:
        """The real images (uint8 NCHW, CPU) the reconstructions grid shows, picked by their
        own seeded generator (the training RNG is untouched)."""
        count = min(RECONSTRUCTION_EXAMPLES, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
        return {"images": dataset.images_at(order[:count].sort().values).cpu()}

    def end_grids(self, network: nn.Module, examples: Batch | None):
        """RUN/samples/reconstructions.png: rows of the fixed real images over their
        reconstructions."""
        images = examples["images"]
        return {RECONSTRUCTIONS_FILE: paired_rows(images, self.reconstruct(network, images))}


# Options that act on a discriminator, refused for a model without one: flag -> off value
_GAN_ONLY = {
    "loss": "bce",
    "gp": 0.0,
    "r1": 0.0,
    "spectral_norm": False,
    "instance_noise": 0.0,
    "diffaugment": "",
    "d_steps": 1,
    "pack": 1,
    "minibatch_std": False,
    "feature_matching": False,
    "unroll": 0,
    "r2": 0.0,
    "reg_every": 1,
    "clip_weights": 0.0,
    "replay": 0,
    "ada": 0.0,
}


def build_vae(config: TrainConfig, img_resolution: int, img_channels: int) -> VAEFamily:
    for name, off in _GAN_ONLY.items():
        if getattr(config, name) != off:
            raise GanforgeError(f"{flag_name(name)}: vae has no discriminator for it to act on")
    common = {"img_resolution": img_resolution, "img_channels": img_channels, "width": config.width}
    return VAEFamily(
        ConvEncoder(config.z_dim, **common),
        DCGANGenerator(z_dim=config.z_dim, **common),
        z_dim=config.z_dim,
        recon=config.model_options.recon,
        beta=config.model_options.beta,
    )

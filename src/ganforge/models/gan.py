"""The classic two-player family (mlp, dcgan): D learns real=1 / fake=0, then G learns
through a frozen D with its fakes labelled 1."""

from __future__ import annotations

import torch
from torch import nn

from ganforge import losses
from ganforge.models.family import Batch, Phase

GAN_PHASES = (
    Phase("discriminator", network="discriminator", repeats="d_steps", fresh_batch=True),
    Phase("generator", network="generator", repeats=None, fresh_batch=False),
)


class GANFamily:
    """A generator and a discriminator trained with binary cross-entropy on logits."""

    phases = GAN_PHASES
    sampler = "generator"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        z_dim: int,
        g_loss: str = "non-saturating",
        label_smoothing: float = 0.0,
    ):
        self.networks = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
        self.z_dim = z_dim
        self.g_loss = losses.G_LOSSES[g_loss]
        self.real_label = 1.0 - label_smoothing

    @property
    def generator(self) -> nn.Module:
        return self.networks["generator"]

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def phase_loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = batch["images"]
        z = self.sample_latent(real.shape[0], device=real.device)
        if phase == "discriminator":
            with torch.no_grad():
                fake = self.generator(z)
            real_logits = self.discriminator(real)
            fake_logits = self.discriminator(fake)
            loss = losses.d_bce(real_logits, fake_logits, self.real_label)
            stats = {
                "loss_d": loss.detach(),
                "d_real": torch.sigmoid(real_logits).mean().detach(),
                "d_fake": torch.sigmoid(fake_logits).mean().detach(),
                "d_accuracy": (
                    (real_logits > 0).float().mean() + (fake_logits < 0).float().mean()
                ).detach()
                / 2,
            }
            return loss, stats
        if phase == "generator":
            fake_logits = self.discriminator(self.generator(z))
            loss = self.g_loss(fake_logits)
            return loss, {
                "loss_g": loss.detach(),
                "d_fake_g": torch.sigmoid(fake_logits).mean().detach(),
            }
        raise ValueError(f"GANFamily has no phase '{phase}'")

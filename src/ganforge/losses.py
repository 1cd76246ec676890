"""GAN objectives as pure functions of discriminator logits: no state, no optimisers.

Binary cross-entropy is computed on logits (log-sum-exp form), never on sigmoid outputs,
so it stays finite when D is very confident (Goodfellow et al. 2014).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_bce(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """Discriminator loss: real images labelled `real_label` (1, or 1 - smoothing), fakes 0."""
    real_targets = torch.full_like(real_logits, real_label)
    real_loss = F.binary_cross_entropy_with_logits(real_logits, real_targets)
    fake_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real_loss + fake_loss


def g_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss -log D(G(z)): fakes labelled 1. Strong gradients while D wins."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def g_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The original minimax loss log(1 - D(G(z))): its gradient vanishes as D(G(z)) -> 0."""
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


G_LOSSES = {"non-saturating": g_non_saturating, "saturating": g_saturating}

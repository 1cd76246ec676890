"""GAN objectives as pure functions of discriminator logits: no state, no optimisers.

Binary cross-entropy is computed on logits (log-sum-exp form), never on sigmoid outputs,
so it stays finite when D is very confident (Goodfellow et al. 2014). The hinge, Wasserstein
and least-squares losses read the same raw outputs as critic scores; the relativistic losses
read differences of them, so their generator side needs D's real logits too
(RELATIVISTIC_LOSSES). Each loss is a mean over the batch. The gradient penalties take the
images too and differentiate through D.
"""

from __future__ import annotations

from collections.abc import Callable

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


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; SN-GAN, Miyato et al. 2018): relu(1 - D(x)) + relu(1 + D(G(z))).
    Real logits above 1 and fake ones below -1 cost nothing, so D stops pushing them apart."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator side of the hinge loss: -D(G(z)), raise the critic's score of the fakes."""
    return -fake_logits.mean()


def d_wasserstein(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss (Arjovsky et al. 2017): D(G(z)) - D(x), minus the Wasserstein estimate.
    Meaningful only for a (roughly) 1-Lipschitz critic: use it with --gp or --spectral-norm."""
    return fake_logits.mean() - real_logits.mean()


def g_wasserstein(fake_logits: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss: -D(G(z))."""
    return -fake_logits.mean()


def d_least_squares(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """LSGAN (Mao et al. 2017), a = 0, b = c = 1: ½(D(x) - b)² + ½D(G(z))², on raw outputs.
    `real_label` is b: 1, or 1 - smoothing."""
    return 0.5 * ((real_logits - real_label) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def g_least_squares(fake_logits: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss with c = 1: ½(D(G(z)) - 1)²."""
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


def d_relativistic_pairing(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """RpGAN (Jolicoeur-Martineau 2019; the loss of R3GAN, Huang et al. 2024): each real sample
    is paired with a fake one and D learns which of the two is real, E softplus(-(D(x_i) -
    D(G(z_i)))). Only differences of logits count: unlike bce, a G that covers one mode cannot
    be a stationary point with D indifferent elsewhere (Sun et al. 2020)."""
    return F.softplus(fake_logits - real_logits).mean()


def g_relativistic_pairing(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """RpGAN's generator side: the same pairs with the roles swapped, E softplus(-(D(G(z_i)) -
    D(x_i)))."""
    return F.softplus(real_logits - fake_logits).mean()


def d_relativistic_average(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """RaGAN (Jolicoeur-Martineau 2019): each sample is judged against the other side's mean,
    E_r softplus(-(C(x) - E_f C(G(z)))) + E_f softplus(C(G(z)) - E_r C(x)): bce on the
    relative logits, "is this real more realistic than the average fake"."""
    return (
        F.softplus(fake_logits.mean() - real_logits).mean()
        + F.softplus(fake_logits - real_logits.mean()).mean()
    )


def g_relativistic_average(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """RaGAN's generator side: D's loss with real and fake swapped, so G also lowers how much
    more realistic the reals look (a gradient the bce G loss does not have)."""
    return d_relativistic_average(fake_logits, real_logits)


# --loss NAME -> (discriminator loss, generator loss). bce's generator loss is chosen by --g-loss.
LOSSES = {
    "bce": (d_bce, g_non_saturating),
    "hinge": (d_hinge, g_hinge),
    "wasserstein": (d_wasserstein, g_wasserstein),
    "least-squares": (d_least_squares, g_least_squares),
    "relativistic": (d_relativistic_pairing, g_relativistic_pairing),
    "relativistic-average": (d_relativistic_average, g_relativistic_average),
}
# The losses whose D loss has a target for real images, which label smoothing lowers.
SMOOTHED_LOSSES = frozenset({"bce", "least-squares"})
# The losses of logit differences: their G loss is g(fake_logits, real_logits).
RELATIVISTIC_LOSSES = frozenset({"relativistic", "relativistic-average"})


def gradient_penalty(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(‖∇D(x̂)‖₂ - 1)²] on x̂ = εx + (1 - ε)G(z), with one
    ε ~ U(0, 1) per image, so that D is pushed to unit gradient norm between the two
    distributions. Differentiable (create_graph) so that it trains D; images NCHW (or N...)."""
    epsilon = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mixed = (epsilon * real.detach() + (1 - epsilon) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def zero_centred_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """E‖∇ₓD(x)‖² over `images`, which must require grad (`logits` come from them).

    On real images it is R1 (Mescheder et al. 2018): D kept flat on the data, so that the game
    converges instead of circling; on fakes, R2, D flat on G's samples too. R3GAN (Huang et al.
    2024) proves the relativistic loss locally convergent with both. Differentiable
    (create_graph) so that it trains D."""
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()

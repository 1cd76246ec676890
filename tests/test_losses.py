"""GAN objectives on logits: values, numerical stability, and the saturating vs
non-saturating gradient behaviour that motivates the non-saturating loss."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge import losses
from ganforge.config import G_LOSSES, TrainConfig
from ganforge.models import build_model


def per_element_grad(loss_fn, logit: float, n: int = 8) -> torch.Tensor:
    """d loss / d logit for each element, undoing the 1/n of the mean reduction."""
    logits = torch.full((n,), logit, dtype=torch.float64, requires_grad=True)
    loss_fn(logits).backward()
    return logits.grad * n


def test_loss_registry_matches_config_choices():
    assert set(losses.G_LOSSES) == set(G_LOSSES)
    assert losses.G_LOSSES["saturating"] is losses.g_saturating
    assert losses.G_LOSSES["non-saturating"] is losses.g_non_saturating


def test_generator_losses_values():
    logits = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)
    d = torch.sigmoid(logits)
    assert torch.allclose(losses.g_non_saturating(logits), (-torch.log(d)).mean())
    assert torch.allclose(losses.g_saturating(logits), torch.log(1 - d).mean())


def test_when_d_rejects_fakes_saturating_gradient_vanishes_non_saturating_does_not():
    # D(G(z)) = sigmoid(-10) ~ 4.5e-5: the discriminator confidently rejects the fakes.
    saturating = per_element_grad(losses.g_saturating, -10.0)
    non_saturating = per_element_grad(losses.g_non_saturating, -10.0)
    d = torch.sigmoid(torch.tensor(-10.0, dtype=torch.float64))
    # d/dx log(1 - sigmoid(x)) = -sigmoid(x) ~ 0; d/dx -log sigmoid(x) = sigmoid(x) - 1 ~ -1
    assert torch.allclose(saturating, -d.expand(8))
    assert saturating.abs().max() < 1e-4
    assert torch.allclose(non_saturating, torch.full((8,), -1.0, dtype=torch.float64), atol=1e-4)
    assert non_saturating.abs().min() > 1e4 * saturating.abs().max()
    # both push the logit up (gradient descent increases D(G(z)))
    assert (saturating < 0).all() and (non_saturating < 0).all()


def test_when_d_is_fooled_the_roles_swap():
    # D(G(z)) = sigmoid(10) ~ 1: now the saturating loss has the strong gradient.
    saturating = per_element_grad(losses.g_saturating, 10.0)
    non_saturating = per_element_grad(losses.g_non_saturating, 10.0)
    assert torch.allclose(saturating, torch.full((8,), -1.0, dtype=torch.float64), atol=1e-4)
    assert non_saturating.abs().max() < 1e-4
    assert saturating.abs().min() > 1e4 * non_saturating.abs().max()


def test_gradients_are_mean_scaled():
    for n in (2, 16):
        logits = torch.zeros(n, requires_grad=True)
        losses.g_non_saturating(logits).backward()
        # at logit 0: sigmoid - 1 = -0.5 per element, divided by n
        assert torch.allclose(logits.grad, torch.full((n,), -0.5 / n))


def test_d_bce_matches_the_formula():
    real = torch.tensor([2.0, -1.0, 0.3], dtype=torch.float64)
    fake = torch.tensor([-2.5, 0.4, 1.0], dtype=torch.float64)
    for label in (1.0, 0.9):
        dr, df = torch.sigmoid(real), torch.sigmoid(fake)
        expected = (
            -(label * torch.log(dr) + (1 - label) * torch.log(1 - dr)).mean()
            - torch.log(1 - df).mean()
        )
        assert torch.allclose(losses.d_bce(real, fake, label), expected)


def test_d_bce_is_finite_for_extreme_logits_and_near_zero_when_d_is_right():
    real = torch.tensor([200.0, 150.0])
    fake = torch.tensor([-200.0, -150.0])
    assert losses.d_bce(real, fake).item() == pytest.approx(0.0, abs=1e-6)
    wrong = losses.d_bce(fake, real)
    assert math.isfinite(wrong.item()) and wrong.item() > 100
    real.requires_grad_(True)
    losses.d_bce(real, fake).backward()
    assert torch.isfinite(real.grad).all()


def test_label_smoothing_moves_the_optimum_of_real_logits():
    # With real label 0.9 the loss on real logits is minimal at logit = log(0.9 / 0.1).
    optimum = math.log(0.9 / 0.1)
    logits = torch.tensor([optimum], dtype=torch.float64, requires_grad=True)
    losses.d_bce(logits, torch.tensor([-5.0], dtype=torch.float64), real_label=0.9).backward()
    assert abs(logits.grad.item()) < 1e-9
    logits.grad = None
    losses.d_bce(logits, torch.tensor([-5.0], dtype=torch.float64), real_label=1.0).backward()
    assert logits.grad.item() < -1e-3  # unsmoothed: still pushes the logit up


@pytest.mark.parametrize("g_loss", sorted(G_LOSSES))
def test_family_uses_the_configured_generator_loss(g_loss):
    family = build_model(TrainConfig(model="mlp", width=4, z_dim=4, g_loss=g_loss), 8, 1)
    assert family.g_loss is losses.G_LOSSES[g_loss]
    assert family.real_label == pytest.approx(1 - TrainConfig().label_smoothing)

"""GAN objectives on logits: values, numerical stability, and the saturating vs
non-saturating gradient behaviour that motivates the non-saturating loss."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge import losses
from ganforge.config import G_LOSSES, LOSSES, TrainConfig
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


def test_family_uses_the_default_label_smoothing():
    family = build_model(TrainConfig(model="mlp", width=4, z_dim=4), 8, 1)
    assert family.real_label == pytest.approx(1 - TrainConfig().label_smoothing)


# ---- hinge, Wasserstein, least squares ---------------------------------------------------

REAL = torch.tensor([2.0, -1.0, 0.3, 0.8], dtype=torch.float64)
FAKE = torch.tensor([-2.5, 0.4, 1.0, -0.2], dtype=torch.float64)


# The generator loss of each (--loss, --g-loss) on the fake logits FAKE, worked out by hand:
#   non-saturating  -mean log σ(f) = mean softplus(-f)
#                   = (2.578890 + 0.513015 + 0.313262 + 0.798139) / 4
#   saturating      mean log(1 - σ(f)) = -mean softplus(f)
#                   = -(0.078890 + 0.913015 + 1.313262 + 0.598139) / 4
#   hinge, wgan     -mean f = -(-2.5 + 0.4 + 1.0 - 0.2) / 4
#   least squares   ½ mean (f - 1)² = ½ (12.25 + 0.36 + 0 + 1.44) / 4
# --g-loss chooses only among the bce losses; the others come with their own.
G_LOSS_VALUES = [
    ("bce", "non-saturating", 1.0508264),
    ("bce", "saturating", -0.7258264),
    ("hinge", "non-saturating", 0.325),
    ("hinge", "saturating", 0.325),
    ("wasserstein", "saturating", 0.325),
    ("least-squares", "non-saturating", 1.75625),
    ("least-squares", "saturating", 1.75625),
]


@pytest.mark.parametrize(("loss", "g_loss", "expected"), G_LOSS_VALUES)
def test_the_family_generator_loss_matches_its_closed_form(loss, g_loss, expected):
    config = TrainConfig(model="mlp", width=4, z_dim=4, loss=loss, g_loss=g_loss)
    family = build_model(config, 8, 1)
    assert family.g_loss(FAKE).item() == pytest.approx(expected, abs=1e-6)


def test_every_generator_loss_function_matches_its_closed_form():
    by_function = {
        losses.g_non_saturating: 1.0508264,
        losses.g_saturating: -0.7258264,
        losses.g_hinge: 0.325,
        losses.g_wasserstein: 0.325,
        losses.g_least_squares: 1.75625,
    }
    table = [*losses.G_LOSSES.values(), *(g for _, g in losses.LOSSES.values())]
    relativistic = {losses.LOSSES[name][1] for name in losses.RELATIVISTIC_LOSSES}
    assert set(table) - relativistic == set(by_function)  # those read real logits too: below
    for function, expected in by_function.items():
        assert function(FAKE).item() == pytest.approx(expected, abs=1e-6), function.__name__


def test_loss_table_matches_config_choices():
    assert tuple(losses.LOSSES) == LOSSES
    assert losses.LOSSES["bce"] == (losses.d_bce, losses.g_non_saturating)
    assert losses.SMOOTHED_LOSSES <= set(LOSSES)


def test_hinge_values():
    # relu(1 - [2, -1, .3, .8]) = [0, 2, .7, .2]; relu(1 + [-2.5, .4, 1, -.2]) = [0, 1.4, 2, .8]
    expected = (0 + 2 + 0.7 + 0.2) / 4 + (0 + 1.4 + 2 + 0.8) / 4
    assert losses.d_hinge(REAL, FAKE).item() == pytest.approx(expected)
    assert losses.g_hinge(FAKE).item() == pytest.approx(-(-2.5 + 0.4 + 1.0 - 0.2) / 4)
    # beyond the margins D is satisfied: zero loss
    assert losses.d_hinge(REAL.abs() + 1, -FAKE.abs() - 1).item() == 0.0


def test_wasserstein_values():
    assert losses.d_wasserstein(REAL, FAKE).item() == pytest.approx(FAKE.mean() - REAL.mean())
    assert losses.g_wasserstein(FAKE).item() == pytest.approx(-FAKE.mean().item())


def test_least_squares_values():
    expected = 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE**2).mean()
    assert losses.d_least_squares(REAL, FAKE).item() == pytest.approx(expected.item())
    smoothed = 0.5 * ((REAL - 0.9) ** 2).mean() + 0.5 * (FAKE**2).mean()
    assert losses.d_least_squares(REAL, FAKE, real_label=0.9).item() == pytest.approx(
        smoothed.item()
    )
    assert losses.g_least_squares(FAKE).item() == pytest.approx(0.5 * ((FAKE - 1) ** 2).mean())
    # the optimum: real logits at b = 1, fake logits at a = 0
    assert losses.d_least_squares(torch.ones(3), torch.zeros(3)).item() == 0.0


def d_grads(d_loss, real_value: float, fake_value: float) -> tuple[float, float]:
    real = torch.tensor([real_value], dtype=torch.float64, requires_grad=True)
    fake = torch.tensor([fake_value], dtype=torch.float64, requires_grad=True)
    d_loss(real, fake).backward()
    return real.grad.item(), fake.grad.item()


@pytest.mark.parametrize("name", ["hinge", "wasserstein", "least-squares"])
def test_every_d_loss_raises_real_logits_and_lowers_fake_ones_and_g_raises_fakes(name):
    d_loss, g_loss = losses.LOSSES[name]
    real_grad, fake_grad = d_grads(d_loss, 0.2, 0.5)  # D unsure: fake scored above 0
    assert real_grad < 0 < fake_grad  # gradient descent: real logit up, fake logit down
    assert per_element_grad(g_loss, 0.5).max() < 0  # G pushes its fakes' logits up


def test_hinge_ignores_confident_logits_wasserstein_never_does():
    assert d_grads(losses.d_hinge, 1.5, -1.5) == (0.0, 0.0)
    assert d_grads(losses.d_wasserstein, 1.5, -1.5) == (-1.0, 1.0)  # constant, never saturates
    assert per_element_grad(losses.g_wasserstein, 50.0).tolist() == [-1.0] * 8


def test_least_squares_gradient_grows_with_the_distance_to_the_target():
    # LSGAN's point: fakes far on the "real" side of the boundary still get a gradient
    near, far = (
        per_element_grad(losses.g_least_squares, 0.5),
        per_element_grad(losses.g_least_squares, -3.0),
    )
    assert torch.allclose(near, torch.full((8,), -0.5, dtype=torch.float64))
    assert torch.allclose(far, torch.full((8,), -4.0, dtype=torch.float64))
    assert per_element_grad(losses.g_least_squares, 1.0).abs().max() == 0.0


# ---- gradient penalties ------------------------------------------------------------------


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x> + b on flattened images: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor, bias: float = 0.3):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.bias = bias

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1) @ self.w.flatten() + self.bias


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic_and_grows_with_the_norm():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    direction = torch.randn(1, 4, 4)
    unit = LinearCritic(direction / direction.norm())
    assert losses.gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    for norm in (0.25, 3.0):
        critic = LinearCritic(norm * direction / direction.norm())
        assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx((norm - 1) ** 2)


def test_gradient_penalty_trains_the_critic_towards_unit_gradient():
    torch.manual_seed(0)
    real, fake = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    direction = torch.randn(1, 4, 4)
    critic = LinearCritic(3 * direction / direction.norm())
    penalty = losses.gradient_penalty(critic, real, fake)
    assert penalty.requires_grad  # create_graph: the penalty is a function of D's weights
    penalty.backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|: along w, shrinking it
    expected = 2 * (3 - 1) * direction / direction.norm()
    assert torch.allclose(critic.w.grad, expected, atol=1e-5)
    # the images themselves are never changed or given gradients
    assert not real.requires_grad and not fake.requires_grad


def test_gradient_penalty_is_taken_between_real_and_fake():
    torch.manual_seed(0)
    real, fake = torch.zeros(64, 3), torch.ones(64, 3)
    seen = []

    def critic(images):
        seen.append(images.detach())
        return images.sum(1)

    losses.gradient_penalty(critic, real, fake)
    (mixed,) = seen
    assert mixed.shape == real.shape
    # each interpolate is eps * real + (1 - eps) * fake: all coordinates equal, in [0, 1]
    assert torch.equal(mixed, mixed[:, :1].expand(-1, 3))
    assert 0 <= mixed.min() and mixed.max() <= 1 and mixed.std() > 0.2


def test_zero_centred_penalty_is_the_mean_squared_input_gradient():
    torch.manual_seed(0)
    w = torch.randn(1, 3, 3)
    critic = LinearCritic(w)
    real = torch.randn(5, 1, 3, 3, requires_grad=True)
    penalty = losses.zero_centred_penalty(critic(real), real)
    assert penalty.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-6)  # |w|^2 each image
    # a nonlinear D: compare with per-image gradients taken one by one
    mlp = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(9, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)
    )
    penalty = losses.zero_centred_penalty(mlp(real).view(-1), real)
    by_hand = []
    for image in real.detach():
        image = image[None].requires_grad_(True)
        (grad,) = torch.autograd.grad(mlp(image).sum(), image)
        by_hand.append(grad.pow(2).sum())
    assert penalty.item() == pytest.approx(torch.stack(by_hand).mean().item(), rel=1e-5)
    penalty.backward()  # differentiable in D's weights
    assert mlp[1].weight.grad is not None and mlp[1].weight.grad.abs().sum() > 0


# ---- relativistic losses (RpGAN, RaGAN) ---------------------------------------------------


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_relativistic_pairing_values_pair_each_real_with_its_fake():
    real, fake = REAL.tolist(), FAKE.tolist()
    d = sum(softplus(-(r - f)) for r, f in zip(real, fake)) / 4
    g = sum(softplus(-(f - r)) for r, f in zip(real, fake)) / 4
    assert losses.d_relativistic_pairing(REAL, FAKE).item() == pytest.approx(d, abs=1e-9)
    assert losses.g_relativistic_pairing(FAKE, REAL).item() == pytest.approx(g, abs=1e-9)
    # pairs, not means: the same logits paired otherwise give another loss
    assert losses.d_relativistic_pairing(REAL, FAKE.flip(0)).item() != pytest.approx(d)


def test_relativistic_average_values_judge_each_sample_against_the_other_sides_mean():
    real, fake = REAL.tolist(), FAKE.tolist()
    mean_r, mean_f = sum(real) / 4, sum(fake) / 4
    d = sum(softplus(-(r - mean_f)) for r in real) / 4 + sum(softplus(f - mean_r) for f in fake) / 4
    g = sum(softplus(-(f - mean_r)) for f in fake) / 4 + sum(softplus(r - mean_f) for r in real) / 4
    assert losses.d_relativistic_average(REAL, FAKE).item() == pytest.approx(d, abs=1e-9)
    assert losses.g_relativistic_average(FAKE, REAL).item() == pytest.approx(g, abs=1e-9)
    # the pairing of the reals does not matter, only their mean
    assert losses.d_relativistic_average(REAL.flip(0), FAKE).item() == pytest.approx(d, abs=1e-9)


@pytest.mark.parametrize("name", sorted(losses.RELATIVISTIC_LOSSES))
def test_relativistic_losses_see_only_differences_of_logits(name):
    d_loss, g_loss = losses.LOSSES[name]
    shift = 3.7
    assert d_loss(REAL + shift, FAKE + shift).item() == pytest.approx(d_loss(REAL, FAKE).item())
    assert g_loss(FAKE + shift, REAL + shift).item() == pytest.approx(g_loss(FAKE, REAL).item())
    assert losses.d_bce(REAL + shift, FAKE + shift).item() != pytest.approx(
        losses.d_bce(REAL, FAKE).item()
    )
    real_grad, fake_grad = d_grads(d_loss, 0.2, 0.5)  # the fake judged more real than the real
    assert real_grad < 0 < fake_grad
    fake = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    g_loss(fake, torch.tensor([0.2], dtype=torch.float64)).backward()
    assert fake.grad.item() < 0  # G pushes its fakes above the reals


@pytest.mark.parametrize("name", sorted(losses.RELATIVISTIC_LOSSES))
def test_the_family_gives_a_relativistic_g_loss_the_real_logits(name):
    family = build_model(TrainConfig(model="mlp", width=4, z_dim=4, loss=name), 8, 1)
    expected = losses.LOSSES[name][1](FAKE, REAL).item()
    assert family.adversarial_g_loss(FAKE, lambda: REAL).item() == pytest.approx(expected)
    bce = build_model(TrainConfig(model="mlp", width=4, z_dim=4), 8, 1)
    asked = []
    bce.adversarial_g_loss(FAKE, lambda: asked.append(1))
    assert not asked  # the other losses never pay for D's real logits

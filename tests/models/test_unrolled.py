"""--unroll K (Unrolled GAN, Metz et al. 2017): G's loss is taken against D after K more of
D's own optimiser steps, and G's gradient goes through those steps. Checked against torch's
optimisers doing the steps for real, and against finite differences of G's loss."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import ganforge
from cli_errors import assert_one_line_error
from ganforge import GanforgeError, TrainConfig
from ganforge.cli import main
from ganforge.models import build_model
from ganforge.models.unrolled import OptimizerStep, plain_module
from ganforge.training.optim import make_optimizer
from ganforge.training.setup import build_optimizers
from tiny import TINY_POINTS, tiny_flags, translator_options

OPTIMIZERS = [
    {"optimizer": "adam", "beta1": 0.5},
    {"optimizer": "rmsprop", "beta1": 0.0},
    {"optimizer": "rmsprop", "beta1": 0.7},  # RMSprop with momentum
    {"optimizer": "sgd", "beta1": 0.0},
    {"optimizer": "sgd", "beta1": 0.9},  # SGD with momentum
]


def point_family(dtype=torch.float32, **options):
    """A small mlp on 2-D points with its optimisers attached, as a run on ring8 builds it."""
    config = TrainConfig(
        model="mlp", data="ring8", point_dims=2, width=8, z_dim=2, lr_d=0.01, **options
    )
    family = build_model(config, None, None)
    family.networks.to(dtype)
    return family, build_optimizers(config, family)


def ring(n: int, generator: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    angles = torch.rand(n, generator=generator, dtype=dtype) * 2 * torch.pi
    return torch.stack([angles.cos(), angles.sin()], dim=1)


def real_d_step(family, optimizer, real: torch.Tensor, fake: torch.Tensor) -> None:
    """One update of D by its optimiser on the adversarial loss, for real."""
    optimizer.zero_grad()
    d = family.networks["discriminator"]
    family.d_loss(d(real), d(fake)).backward()
    optimizer.step()


@pytest.mark.parametrize("options", OPTIMIZERS, ids=lambda o: f"{o['optimizer']}-{o['beta1']}")
@pytest.mark.parametrize("earlier_steps", [0, 2])
def test_each_unrolled_update_is_the_optimisers_own(options, earlier_steps):
    """From no state (the first step) and from the moments of earlier steps alike."""
    torch.manual_seed(0)
    network = nn.Linear(3, 2)
    optimizer = make_optimizer(TrainConfig(**options), network, lr=0.05)
    inputs = torch.randn(8, 3)
    for _ in range(earlier_steps):
        optimizer.zero_grad()
        network(inputs).pow(2).mean().backward()
        optimizer.step()
    named = dict(network.named_parameters())
    grads = {name: torch.randn_like(p) for name, p in named.items()}
    unrolled = OptimizerStep(optimizer, named)({n: p.detach() for n, p in named.items()}, grads)
    for name, p in named.items():
        p.grad = grads[name].clone()
    optimizer.step()
    for name, p in named.items():
        torch.testing.assert_close(unrolled[name], p.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("options", [OPTIMIZERS[0], OPTIMIZERS[2]], ids=["adam", "rmsprop-m"])
def test_the_unrolled_d_is_d_after_k_real_steps(options):
    family, optimizers = point_family(unroll=3, **options)
    rng = torch.Generator().manual_seed(1)
    real, fake = ring(64, rng), torch.randn(64, 2, generator=rng) * 0.3
    real_d_step(family, optimizers["discriminator"], real, fake)  # D's optimiser has moments
    unrolled = family.unrolled(real, fake, None)

    # the same three steps taken for real, on copies of D and its optimiser
    twin = copy.deepcopy(family)
    twin_optimizer = make_optimizer(TrainConfig(**options), twin.networks["discriminator"], lr=0.01)
    twin_optimizer.load_state_dict(optimizers["discriminator"].state_dict())
    for _ in range(3):
        real_d_step(twin, twin_optimizer, real, fake)
    probe = torch.randn(32, 2, generator=rng)
    expected = twin.networks["discriminator"](probe)
    torch.testing.assert_close(unrolled(probe), expected, rtol=1e-4, atol=1e-5)
    # and not D as it is now: three steps moved it
    assert not torch.allclose(family.networks["discriminator"](probe), expected, atol=1e-3)


def g_loss_of(family, real: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(5)  # the same noise for every evaluation
    return family.phase_loss("generator", {"images": real, "labels": torch.zeros(len(real))})[0]


@pytest.fixture
def float64():
    """Noise and networks in float64 (finite differences need the digits)."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_gs_gradient_goes_through_the_unrolled_steps(float64):
    """Autograd's gradient of G's loss equals finite differences of the whole unrolled loss
    (float64): the loss depends on G through D's K steps, and the gradient knows it."""
    family, optimizers = point_family(dtype=torch.float64, unroll=4)
    rng = torch.Generator().manual_seed(2)
    real = ring(32, rng, torch.float64)
    real_d_step(family, optimizers["discriminator"], real, torch.randn(32, 2, dtype=torch.float64))
    family.networks.eval()  # no batchnorm statistics between the evaluations
    weight = family.networks["generator"].net[0].weight
    g_loss_of(family, real).backward()
    autograd = weight.grad[0, 0].item()

    h = 1e-6
    with torch.no_grad():
        weight[0, 0] += h
    plus = g_loss_of(family, real).item()
    with torch.no_grad():
        weight[0, 0] -= 2 * h
    minus = g_loss_of(family, real).item()
    with torch.no_grad():
        weight[0, 0] += h
    assert autograd == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-9)

    # and the unrolled steps matter: the plain GAN's gradient is another one
    weight.grad = None
    family.remedies = family.remedies.__class__(unroll=0)
    g_loss_of(family, real).backward()
    assert abs(weight.grad[0, 0].item() - autograd) > 1e-3 * abs(autograd)


def test_the_generator_phase_leaves_d_untouched():
    family, optimizers = point_family(unroll=2)
    rng = torch.Generator().manual_seed(3)
    real = ring(32, rng)
    real_d_step(family, optimizers["discriminator"], real, torch.randn(32, 2, generator=rng))
    d = family.networks["discriminator"]
    before = {k: v.clone() for k, v in d.state_dict().items()}
    d.zero_grad(set_to_none=True)
    d.requires_grad_(False)  # as the loop freezes it in G's phase
    g_loss_of(family, real).backward()
    assert all(torch.equal(before[k], v) for k, v in d.state_dict().items())
    assert all(p.grad is None for p in d.parameters())
    assert all(p.grad is not None for p in family.networks["generator"].parameters())


def test_the_plain_module_behind_compiled_and_wrapped_stand_ins():
    inner = nn.Linear(2, 1)

    class Wrapper(nn.Module):  # as DistributedDataParallel holds its module
        def __init__(self, module):
            super().__init__()
            self.module = module

    assert plain_module(Wrapper(inner)) is inner
    assert plain_module(torch.compile(inner)) is inner
    assert plain_module(inner) is inner


def test_a_point_run_with_unroll_trains_and_resumes(tmp_path):
    options = {**TINY_POINTS, "steps": 6, "log_every": 3, "unroll": 3}
    run = ganforge.train(**options, out=str(tmp_path / "u"))
    assert run.config.unroll == 3
    losses = [record["loss_g"] for record in run.metrics()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert main(["train", "--resume", str(run.path), "--steps", "8", "--no-progress"]) == 0
    assert ganforge.load_run(run.path).step == 8


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan", "vae"])
def test_models_whose_g_loss_cannot_unroll_refuse_it(tmp_path, capsys, model):
    out = tmp_path / "run"
    assert main(tiny_flags(out, model=model, **translator_options(model)) + ["--unroll=2"]) == 2
    assert_one_line_error(capsys, "--unroll")
    assert not out.exists()


def test_unroll_bounds_and_conflicts():
    with pytest.raises(GanforgeError, match="^--unroll: must be in 0 \\(off\\) to 50"):
        TrainConfig.from_dict({"unroll": 51})
    with pytest.raises(GanforgeError, match="^--unroll: must be in"):
        TrainConfig.from_dict({"unroll": -1})
    with pytest.raises(GanforgeError, match="^--unroll:.*--feature-matching"):
        TrainConfig.from_dict({"unroll": 2, "feature_matching": True})
    for model in ("mlp", "dcgan", "cgan", "acgan"):  # every family with GANFamily's G loss
        TrainConfig.from_dict({"model": model, "unroll": 2}).validate()

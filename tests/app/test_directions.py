"""GANSpace directions: for a generator whose first layer is linear in z they are the right
singular vectors of its weight, strongest first; the forward pass stops after that layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge import GanforgeError
from ganforge.app.catalog import RunCatalog
from ganforge.app.directions import first_layer_features, principal_directions
from ganforge.models import ModelFamily


class NoiseFamily(ModelFamily):
    """A noise-to-image family around any network (the directions need only its sampling)."""

    sampler = "generator"

    def __init__(self, z_dim: int):
        self.z_dim = z_dim

    def sample_latent(self, n, generator=None, device="cpu"):
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def sample(self, network, z, condition=None):
        return network(z)


class CountingTail(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        self.calls += 1
        return x * self.scale


def linear_generator(z_dim: int = 6, features: int = 12) -> tuple[nn.Module, torch.Tensor]:
    """A generator whose first layer is z -> W z with singular values 8, 4, 2, 1, 0.5, 0.25."""
    rotation_out, _ = torch.linalg.qr(torch.randn(features, features))
    rotation_in, _ = torch.linalg.qr(torch.randn(z_dim, z_dim))
    singular = torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5, 0.25])
    weight = rotation_out[:, :z_dim] @ torch.diag(singular) @ rotation_in.T
    first = nn.Linear(z_dim, features, bias=False)
    first.weight.data = weight
    return nn.Sequential(first, nn.Tanh(), CountingTail()), rotation_in.T  # rows: directions


def test_a_linear_first_layer_gives_its_right_singular_vectors():
    torch.manual_seed(0)
    network, expected = linear_generator()
    found = principal_directions(NoiseFamily(6), network, k=4)
    cosines = (found.vectors.double() @ expected[:4].T.double()).diagonal().abs()
    assert cosines.min() > 0.99
    assert torch.allclose(found.vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(found.scales, torch.ones(4), atol=0.1)  # z ~ N(0, I)
    assert (found.explained[:-1] >= found.explained[1:]).all()
    shares = torch.tensor([64.0, 16.0, 4.0, 1.0]) / (64 + 16 + 4 + 1 + 0.25 + 0.0625)
    assert torch.allclose(found.explained, shares, atol=0.03)
    assert network[2].calls == 0  # only the first layer ran


def test_moving_a_code_adds_scaled_directions():
    torch.manual_seed(0)
    network, _ = linear_generator()
    found = principal_directions(NoiseFamily(6), network, k=3)
    code = torch.zeros(1, 6)
    moved = found.move(code, [2.0, 0.0, -1.0])
    expected = 2.0 * found.scales[0] * found.vectors[0] - found.scales[2] * found.vectors[2]
    assert torch.allclose(moved[0], expected)
    with pytest.raises(GanforgeError, match="4 slider values for 3"):
        found.move(code, [0.0] * 4)


def test_the_features_are_the_first_layers_output():
    network, _ = linear_generator()
    codes = torch.randn(5, 6)
    features = first_layer_features(NoiseFamily(6), network, codes)
    assert torch.allclose(features.float(), network[0](codes).detach(), atol=1e-6)


def test_a_first_layer_that_ignores_the_noise_is_refused():
    network = nn.Sequential(nn.Linear(6, 4))
    nn.init.zeros_(network[0].weight)
    with pytest.raises(GanforgeError, match="does not vary with the noise"):
        principal_directions(NoiseFamily(6), network)


def test_real_runs_conditional_too(runs_dir):
    catalog = RunCatalog(runs_dir)
    for name in ("dcgan", "cgan"):
        loaded = catalog.load(name)
        found = principal_directions(loaded.family, loaded.network, k=5, samples=512)
        assert found.vectors.shape == (5, loaded.family.z_dim)
        assert torch.isfinite(found.vectors).all() and float(found.explained.sum()) <= 1.0
    pix2pix = catalog.load("pix2pix")
    with pytest.raises(GanforgeError, match="translates images"):
        principal_directions(pix2pix.family, pix2pix.network)

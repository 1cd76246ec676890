"""Every registered model family: shapes, ranges, one logit per image, determinism; DCGAN's
architecture rules (no dense or pooling layers in D, N(0, 0.02) init, supported sizes)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge import GanforgeError, TrainConfig
from ganforge.data import load_dataset, to_model_range
from ganforge.models import (
    GANFamily,
    build_model,
    list_models,
    model_kind,
    register_model,
    registry,
)
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator, base_size
from ganforge.sampling import balanced_labels

MODELS = list_models()
# Models that turn noise into images (translators have tests of their own: test_pix2pix.py)
NOISE_MODELS = [m for m in MODELS if not model_kind(m).translator]


def tiny_family(
    model: str, resolution: int = 28, channels: int = 1, width: int = 8, z_dim: int = 8, **options
):
    if model in registry._MODELS and model_kind(model).class_conditional:
        options.setdefault("num_classes", 10)
    config = TrainConfig(model=model, width=width, z_dim=z_dim, **options)
    return build_model(config, resolution, channels)


def some_labels(family, n: int) -> torch.Tensor | None:
    """Labels for a class-conditional family (None for others)."""
    return balanced_labels(n, family.num_classes) if family.kind.class_conditional else None


def test_builtin_models_are_registered():
    assert {"dcgan", "mlp"} <= set(MODELS)
    assert MODELS == sorted(MODELS)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [28, 32, 64])
@pytest.mark.parametrize("model", NOISE_MODELS)
def test_shapes_and_ranges(model, resolution, channels):
    torch.manual_seed(0)
    family = tiny_family(model, resolution, channels)
    generator = family.networks[family.sampler]
    z = family.sample_latent(5)
    assert z.shape == (5, family.z_dim)
    labels = some_labels(family, 5)

    images = family.sample(generator, z, labels)
    assert images.shape == (5, channels, resolution, resolution)
    assert images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.std() > 0  # not a constant output

    # also in eval mode (as used for sampling), and for the extremes of the tanh range
    generator.eval()
    assert family.sample(generator, z * 50, labels).abs().max() <= 1.0

    if "discriminator" not in family.networks:  # a VAE: tests/models/test_vae.py
        return
    logits, _ = family.critic(images.detach(), labels)
    assert logits.shape == (5,)  # exactly one real/fake logit per image
    assert torch.isfinite(logits).all()
    real = torch.rand(3, channels, resolution, resolution) * 2 - 1
    assert family.critic(real, some_labels(family, 3))[0].shape == (3,)


@pytest.mark.parametrize("model", NOISE_MODELS)
def test_family_protocol(model):
    family = tiny_family(model)
    assert family.sampler in family.networks
    phase_networks = {name for phase in family.phases for name in phase.trains}
    assert phase_networks <= set(family.networks)
    for phase in family.phases:
        if phase.repeats is not None:
            assert hasattr(TrainConfig(), phase.repeats)


def test_gan_phases_d_then_g():
    family = tiny_family("mlp")
    names = [phase.name for phase in family.phases]
    assert names == ["discriminator", "generator"]
    d_phase, g_phase = family.phases
    assert d_phase.network == "discriminator" and d_phase.repeats == "d_steps"
    assert g_phase.network == "generator" and g_phase.repeats is None
    assert d_phase.fresh_batch and not g_phase.fresh_batch


@pytest.mark.parametrize("model", [m for m in NOISE_MODELS if m != "vae"])  # GANs
def test_phase_losses_and_stats(model, digits):
    torch.manual_seed(0)
    family = tiny_family(model)
    batch = {"images": to_model_range(digits.images[:8]), "labels": digits.labels[:8]}
    loss_d, stats_d = family.phase_loss("discriminator", batch)
    assert loss_d.ndim == 0 and loss_d.requires_grad
    assert {"loss_d", "d_real", "d_fake", "d_accuracy"} <= set(stats_d)
    for key in ("d_real", "d_fake", "d_accuracy"):
        assert 0.0 <= stats_d[key].item() <= 1.0
        assert not stats_d[key].requires_grad
    loss_g, stats_g = family.phase_loss("generator", batch)
    assert loss_g.ndim == 0 and loss_g.requires_grad
    assert "loss_g" in stats_g and not stats_g["loss_g"].requires_grad
    with pytest.raises(ValueError):
        family.phase_loss("encoder", batch)


@pytest.mark.parametrize("model", NOISE_MODELS)
def test_same_seed_same_weights_different_seed_different(model):
    def weights(seed):
        torch.manual_seed(seed)
        return tiny_family(model).networks.state_dict()

    first, again, other = weights(3), weights(3), weights(4)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    float_keys = [k for k in first if first[k].is_floating_point() and first[k].numel() > 1]
    assert any(not torch.equal(first[k], other[k]) for k in float_keys)


@pytest.mark.parametrize("model", NOISE_MODELS)
def test_sample_latent_is_seeded_and_gaussian(model):
    family = tiny_family(model, z_dim=16)
    a = family.sample_latent(2000, generator=torch.Generator().manual_seed(1))
    b = family.sample_latent(2000, generator=torch.Generator().manual_seed(1))
    c = family.sample_latent(2000, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    noise = a[:, :16]  # infogan's codes follow (tests/models/test_infogan.py)
    assert abs(noise.mean().item()) < 0.05 and abs(noise.std().item() - 1) < 0.05


# ---- DCGAN rules -----------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [28, 32, 64])
def test_dcgan_discriminator_has_no_dense_or_pooling_layers(resolution):
    family = tiny_family("dcgan", resolution)
    discriminator = family.networks["discriminator"]
    for layer in discriminator.modules():
        assert not isinstance(layer, nn.Linear), layer
        assert "Pool" not in type(layer).__name__, layer
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.stride in ((2, 2), (1, 1)) for c in convs)
    assert sum(c.stride == (2, 2) for c in convs) >= 2  # downsampling by strided convolutions
    assert any(isinstance(m, nn.LeakyReLU) for m in discriminator.modules())
    # DCGAN: no batchnorm on D's input layer
    first = list(discriminator.net.children())
    assert isinstance(first[0], nn.Conv2d) and not isinstance(first[1], nn.BatchNorm2d)


def test_dcgan_generator_structure():
    generator = tiny_family("dcgan", 32).networks["generator"]
    layers = list(generator.net.children())
    assert isinstance(layers[-1], nn.Tanh)
    assert any(isinstance(m, nn.ConvTranspose2d) for m in layers)
    assert any(isinstance(m, nn.BatchNorm2d) for m in layers)
    assert not any(isinstance(m, nn.Linear) for m in generator.modules())


def test_dcgan_init_is_normal_0_02():
    torch.manual_seed(0)
    family = tiny_family("dcgan", 64, 3, width=16)
    conv_weights, bn_weights, biases = [], [], []
    for layer in family.networks.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            conv_weights.append(layer.weight.detach().flatten())
            if layer.bias is not None:
                biases.append(layer.bias.detach().flatten())
        elif isinstance(layer, nn.BatchNorm2d):
            bn_weights.append(layer.weight.detach().flatten())
            biases.append(layer.bias.detach().flatten())
    weights = torch.cat(conv_weights)
    assert weights.numel() > 10_000
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert abs(weights.mean().item()) < 0.002
    scales = torch.cat(bn_weights)
    assert scales.mean().item() == pytest.approx(1.0, abs=0.01)
    assert 0.01 < scales.std().item() < 0.03
    assert torch.count_nonzero(torch.cat(biases)) == 0


@pytest.mark.parametrize("resolution", [16, 28, 32, 56, 64, 128])
def test_dcgan_supported_resolutions(resolution):
    assert base_size(resolution) in (4, 7)
    generator = DCGANGenerator(z_dim=4, img_resolution=resolution, img_channels=1, width=2)
    discriminator = DCGANDiscriminator(img_resolution=resolution, img_channels=1, width=2)
    images = generator(torch.randn(2, 4))
    assert images.shape == (2, 1, resolution, resolution)
    assert discriminator(images).shape == (2,)


@pytest.mark.parametrize("resolution", [30, 8, 14, 48, 100])
def test_dcgan_unsupported_resolution_is_a_clear_error(resolution):
    with pytest.raises(GanforgeError) as info:
        tiny_family("dcgan", resolution)
    message = str(info.value)
    assert message.startswith("--resolution:")
    assert str(resolution) in message


def test_mlp_makes_any_resolution():
    family = tiny_family("mlp", 30, 1)
    assert family.networks["generator"](torch.randn(2, 8)).shape == (2, 1, 30, 30)


def test_unknown_model_lists_valid_ones():
    with pytest.raises(GanforgeError) as info:
        tiny_family("stylegan")
    message = str(info.value)
    assert message.startswith("--model:") and "stylegan" in message
    for name in MODELS:
        assert name in message


def test_register_model_adds_a_family(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    calls = []

    def builder(config, resolution, channels):
        calls.append((config.model, resolution, channels))
        return build_model(config.replace(model="mlp"), resolution, channels)

    register_model("tiny-mlp", builder)
    assert "tiny-mlp" in list_models()
    family = tiny_family("tiny-mlp", 16, 3)
    assert isinstance(family, GANFamily)
    # twice: once on the meta device, to bound the networks' size before allocating them
    assert calls == [("tiny-mlp", 16, 3)] * 2


def test_families_train_on_real_shapes(digits):
    data = load_dataset("digits", resolution=32, channels=3)
    family = tiny_family("dcgan", data.resolution, data.channels)
    logits = family.networks["discriminator"](to_model_range(data.images[:4]))
    assert logits.shape == (4,)

"""R3GAN's networks (Huang et al. 2024): residual inverted bottlenecks with grouped 3x3
convolutions, no normalisation, fix-up initialisation, bilinear resampling, a basis at each
end; every remedy flag; a short run that learns and resumes exactly."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.data import load_dataset
from ganforge.models import build_model, model_defaults
from ganforge.models.layers import MinibatchStd
from ganforge.models.r3gan import (
    ACTIVATION_GAIN,
    DiscriminativeBasis,
    Downsample,
    GenerativeBasis,
    ResidualBlock,
    Upsample,
    group_count,
    stage_widths,
)
from ganforge.sampling import generate

NORMALISATIONS = (
    nn.modules.batchnorm._NormBase,  # batch and instance norms
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
)


def r3gan(resolution: int = 28, channels: int = 1, width: int = 16, **options):
    config = TrainConfig.from_dict({"model": "r3gan", "width": width, "z_dim": 8, **options})
    return build_model(config, resolution, channels)


def blocks(network: nn.Module) -> list[ResidualBlock]:
    return [m for m in network.modules() if isinstance(m, ResidualBlock)]


def parameter_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


@pytest.mark.parametrize(
    ("resolution", "base", "widths"),
    [(28, 7, [64, 32, 16]), (32, 4, [64, 64, 32, 16]), (64, 4, [64, 64, 64, 32, 16])],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_each_resolution(resolution, base, widths, channels):
    torch.manual_seed(0)
    family = r3gan(resolution, channels)
    generator, discriminator = family.networks["generator"], family.networks["discriminator"]
    assert stage_widths(resolution, 16) == widths
    assert generator.basis.basis.shape == (widths[0], base, base)
    assert discriminator.basis.conv.kernel_size == (base, base)
    images = generator(torch.randn(5, 8))
    assert images.shape == (5, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0.05
    assert discriminator.features(images).shape == (5, widths[0], base, base)
    logits = discriminator(images)
    assert logits.shape == (5,) and torch.isfinite(logits).all()
    # one stage per resolution, each with its blocks: 1 per stage by default, or as asked
    assert len(blocks(generator)) == len(blocks(discriminator)) == len(widths)
    deeper = r3gan(resolution, channels, blocks_per_stage=2).networks
    assert (
        len(blocks(deeper["generator"])) == len(blocks(deeper["discriminator"])) == 2 * len(widths)
    )


@pytest.mark.parametrize("resolution", [30, 14, 48])
def test_unsupported_resolutions_are_one_clear_error(resolution):
    with pytest.raises(GanforgeError, match=rf"^--resolution: r3gan makes .*not {resolution}$"):
        r3gan(resolution)


def test_pack_and_minibatch_std_reach_the_discriminator():
    torch.manual_seed(0)
    packed = r3gan(pack=2)
    first = packed.networks["discriminator"].body[0]
    assert isinstance(first, nn.Conv2d) and first.in_channels == 2  # two 1-channel images
    images = torch.rand(6, 1, 28, 28) * 2 - 1
    assert packed.critic(images)[0].shape == (3,)  # one logit per pack

    std = r3gan(minibatch_std=True)
    discriminator = std.networks["discriminator"]
    assert isinstance(discriminator.body[-1], MinibatchStd)  # right before the basis
    assert discriminator.basis.conv.in_channels == 64 + 1
    assert discriminator.features(images).shape == (6, 65, 7, 7)
    assert std.critic(images)[0].shape == (6,)
    assert not any(isinstance(m, MinibatchStd) for m in r3gan().networks.modules())


@pytest.mark.parametrize("options", [{}, {"spectral_norm": True}, {"gp": 10.0}])
def test_no_normalisation_layer_anywhere(options):
    for network in r3gan(64, 3, **options).networks.values():
        assert not [m for m in network.modules() if isinstance(m, NORMALISATIONS)]


def test_resampling_is_bilinear_not_strided_or_transposed():
    networks = r3gan(64).networks
    for network in networks.values():
        for layer in network.modules():
            assert not isinstance(layer, nn.ConvTranspose2d), layer
            assert "Pool" not in type(layer).__name__, layer
            if isinstance(layer, nn.Conv2d):
                assert layer.stride == (1, 1)
    ups = [m for m in networks["generator"].modules() if isinstance(m, Upsample)]
    downs = [m for m in networks["discriminator"].modules() if isinstance(m, Downsample)]
    assert len(ups) == len(downs) == 4  # 4 -> 8 -> 16 -> 32 -> 64
    # a ramp stays a ramp under bilinear interpolation (nearest would make steps of 2)
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    same = Upsample(1, 1)(ramp)[0, 0, 4, 2:-2]
    assert torch.allclose(same.diff(), torch.full_like(same.diff(), 0.5))
    # D's down-sampling low-pass filters with [1, 3, 3, 1] / 8: stripes two pixels wide are
    # halved in contrast (a 2x2 average would pass them whole, aliased to one-pixel stripes)
    stripes = (torch.arange(16) // 2 % 2 * 2.0 - 1).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    halved = Downsample(1, 1)(stripes)[0, 0, 1:-1, 1:-1]
    assert torch.allclose(halved.abs(), torch.full_like(halved, 0.5))
    # a 1x1 convolution where the channels change between stages, none where they do not
    assert [type(m.channels).__name__ for m in ups] == ["Identity", "Identity", "Conv2d", "Conv2d"]


def test_each_residual_block_starts_as_the_identity():
    torch.manual_seed(0)
    networks = r3gan(32, blocks_per_stage=2).networks
    for network in networks.values():
        found = blocks(network)
        assert len(found) == 8
        for block in found:
            assert torch.count_nonzero(block.project.weight) == 0  # fix-up: the last conv is 0
            assert block.project.bias is None
            channels = block.expand.in_channels
            x = torch.randn(3, channels, 8, 8)
            assert torch.equal(block(x), x)  # the output is its shortcut path, exactly
            # ... while the rest of the branch is live: the first gradient step opens it
            assert block.activation(block.conv(block.activation(block.expand(x)))).std() > 0.1
            block.project.weight.data.normal_(0, 0.1)
            assert not torch.allclose(block(x), x)


def test_fix_up_scales_the_branches_by_depth():
    """Weights of the first two convolutions of each branch: He's std for leaky ReLU 0.2
    times L^(-1/(2m-2)), L = blocks in the network, m = 3 (the paper's code); deeper
    networks start with smaller branches."""
    torch.manual_seed(0)

    def branch_stds(blocks_per_stage: int) -> list[tuple[float, float]]:
        network = r3gan(32, width=32, blocks_per_stage=blocks_per_stage).networks["generator"]
        depth = 4 * blocks_per_stage  # 4 stages at 32 px
        found = []
        for block in blocks(network):
            for conv in (block.expand, block.conv):
                fan_in = conv.weight[0].numel()
                expected = ACTIVATION_GAIN * depth ** (-1 / 4) / math.sqrt(fan_in)
                found.append((conv.weight.std().item(), expected))
                assert torch.count_nonzero(conv.bias) == 0
        return found

    for blocks_per_stage in (1, 3):
        for measured, expected in branch_stds(blocks_per_stage):
            assert measured == pytest.approx(expected, rel=0.1)
    assert branch_stds(3)[0][1] == pytest.approx(branch_stds(1)[0][1] * 3 ** (-1 / 4))


def test_the_3x3_convolutions_are_grouped():
    torch.manual_seed(0)
    for network in r3gan(28).networks.values():
        for block in blocks(network):
            expanded = block.conv.in_channels
            assert expanded == 2 * block.expand.in_channels  # --expansion 2
            assert block.conv.kernel_size == (3, 3)
            assert block.conv.groups > 1 and block.conv.groups == expanded // 16  # 16 per group
            assert block.conv.weight.shape[1] == 16
            assert block.expand.kernel_size == block.project.kernel_size == (1, 1)
    depthwise = r3gan(28, expansion=3, group_channels=1).networks["generator"]
    for block in blocks(depthwise):
        assert block.conv.groups == block.conv.in_channels == 3 * block.expand.in_channels
    assert group_count(64, 16) == 4 and group_count(24, 16) == 1 and group_count(48, 16) == 3
    assert group_count(40, 16) == 2  # the most groups of at least 16 that divide it evenly


def test_the_bases_at_each_end():
    torch.manual_seed(0)
    networks = r3gan(28).networks
    basis = networks["generator"].basis
    assert isinstance(basis, GenerativeBasis)
    z = torch.randn(2, 8)
    maps = basis(z)
    # each channel is the learned 7x7 map, scaled by a linear function of z
    scale = basis.linear(z)
    assert torch.allclose(maps, basis.basis * scale[:, :, None, None])
    head = networks["discriminator"].basis
    assert isinstance(head, DiscriminativeBasis)
    assert head.conv.groups == head.conv.in_channels == 64  # depthwise
    assert head.linear.out_features == 1


def test_parameter_counts_are_small_and_grow_with_width():
    counts = {}
    for width in (16, 32):
        networks = r3gan(28, width=width).networks
        counts[width] = [parameter_count(networks[n]) for n in ("generator", "discriminator")]
    assert counts[16] == [60_433, 60_000]  # z_dim 8: 7x7 basis of 64 maps, 3 stages
    assert all(30_000 < n < 200_000 for n in counts[16])
    assert all(2.5 < big / small < 4 for big, small in zip(counts[32], counts[16]))
    dcgan = build_model(TrainConfig(model="dcgan", width=64, z_dim=8), 28, 1).networks
    assert sum(counts[16]) < parameter_count(dcgan) / 2  # 120k against 321k


def test_spectral_norm_keeps_the_discriminator_finite():
    """Spectral norm divides each weight by its largest singular value: a zero projection
    would be 0/0, so with --spectral-norm D's branches start at He's scale (G keeps fix-up)."""
    torch.manual_seed(0)
    family = r3gan(28, spectral_norm=True)
    discriminator = family.networks["discriminator"]
    for block in blocks(discriminator):
        assert torch.count_nonzero(block.project.parametrizations.weight.original) > 0
    assert all(torch.count_nonzero(b.project.weight) == 0 for b in blocks(family.generator))
    logits = family.critic(torch.rand(4, 1, 28, 28) * 2 - 1)[0]
    assert logits.shape == (4,) and torch.isfinite(logits).all()


def test_the_models_defaults_are_the_papers_recipe():
    """RpGAN + R1 + R2 (the paper's "R3"), Adam (0, 0.99), one learning rate, no smoothing."""
    defaults = model_defaults("r3gan")
    assert defaults["loss"] == "relativistic"
    assert defaults["r1"] == defaults["r2"] == 0.05
    assert (defaults["reg_decay"], defaults["reg_final"]) == ("cosine", 0.1)  # gamma scheduled
    assert defaults["beta1"] == 0.0 and defaults["beta2"] == 0.99
    assert defaults["lr_g"] == defaults["lr_d"] == 2e-4
    assert defaults["label_smoothing"] == 0.0
    config = TrainConfig.from_dict({"model": "r3gan", **defaults})
    assert (config.width, config.z_dim) == (16, 64)


def test_options_are_checked():
    for option, value, message in [
        ("blocks_per_stage", 0, "--blocks-per-stage: must be at least 1"),
        ("expansion", 17, "--expansion: must be at most 16"),
        ("group_channels", 0, "--group-channels: must be at least 1"),
    ]:
        with pytest.raises(GanforgeError, match=f"^{message}"):
            TrainConfig.from_dict({"model": "r3gan", option: value})
    with pytest.raises(GanforgeError, match="^--expansion: an option of r3gan"):
        TrainConfig.from_dict({"model": "dcgan", "expansion": 3})


def mean_nearest_distance(samples: np.ndarray, real: torch.Tensor) -> float:
    flat = torch.from_numpy(samples).float().reshape(len(samples), -1)
    return torch.cdist(flat, real).min(dim=1).values.mean().item()


TINY_R3GAN = {
    "model": "r3gan",
    "data": "mnist-mini",
    "width": 8,
    "batch_size": 32,
    "seed": 0,
    "progress": False,
    "checkpoint_every": 100,
    "sample_every": 100,
    "n_grid": 16,
}


def test_a_short_run_learns_and_its_folder_is_complete(tmp_path):
    run = ganforge.train(**TINY_R3GAN, steps=30, log_every=10, ema_decay=0.0, out=str(tmp_path))
    assert (run.config.loss, run.config.beta1) == ("relativistic", 0.0)  # the recipe
    assert run.config.r1 == run.config.r2 == model_defaults("r3gan")["r1"]
    assert (
        run.config.model_options.group_channels == 16
    )  # the model's own options, saved with the run
    for name in ("config.json", "metrics.jsonl", "loss_curves.png", "samples/final.png"):
        assert (tmp_path / name).is_file(), name
    assert [step for step, _ in run.checkpoints] == [30]
    records = run.metrics()
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all(np.isfinite([r["loss_d"], r["loss_g"], r["r1"], r["r2"]]).all() for r in records)
    # D tells the digits from G's fakes (relativistic: each logit against the other side's mean)
    assert records[0]["d_accuracy"] > 0.6 and records[0]["d_real"] > records[0]["d_fake"]

    real = load_dataset("mnist-mini").images[:2000].permute(0, 2, 3, 1).flatten(1).float()
    torch.manual_seed(run.config.seed)  # the generator as the trainer initialised it
    initial = build_model(run.config, 28, 1)
    untrained = generate(initial, initial.networks["generator"], 128, seed=1)
    trained = run.sample(128, seed=1)
    assert mean_nearest_distance(trained, real) < 0.7 * mean_nearest_distance(untrained, real)
    assert trained.reshape(128, -1).std(axis=0).mean() > 2  # not one picture


@pytest.mark.parametrize("options", [{}, {"minibatch_std": True, "pack": 2}])
def test_resume_is_exact(tmp_path, options):
    """Stopped at step 3 of 6 and resumed to the same --steps (gamma's schedule follows them)."""
    options = {**TINY_R3GAN, "batch_size": 16, "log_every": 2, **options}
    options.update(checkpoint_every=3, keep_checkpoints=5)
    straight = ganforge.train(**options, steps=6, out=str(tmp_path / "straight"))
    stopped = tmp_path / "stopped"
    shutil.copytree(straight.path, stopped)
    (stopped / "checkpoints" / straight.checkpoints[-1][1].name).unlink()  # as if it stopped at 3
    resumed = ganforge.train(resume=str(stopped))
    a = load_file(str(straight.checkpoints[-1][1]))
    b = load_file(str(resumed.checkpoints[-1][1]))
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert any("_ema." in k for k in a)  # G's EMA copy is in it too
    assert np.array_equal(resumed.sample(8, seed=1), straight.sample(8, seed=1))


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "hinge", "spectral_norm": True, "minibatch_std": True, "pack": 2},
        {"loss": "wasserstein", "gp": 10.0},
        {"feature_matching": True, "diffaugment": "color,translation,cutout"},
        {"unroll": 2, "instance_noise": 0.1},
        {"precision": "bf16"},  # D's down-sampling filter has a bf16 kernel on CPUs
    ],
    ids=["hinge-sn-mbstd-pack", "wgan-gp", "fm-diffaugment", "unroll-noise", "bf16"],
)
def test_the_remedies_train_it(tmp_path, options):
    tiny = {**TINY_R3GAN, "data": "digits", "batch_size": 8, "steps": 2, "log_every": 1}
    run = ganforge.train(**{**tiny, **options}, out=str(tmp_path))
    records = run.metrics()
    assert [r["step"] for r in records] == [1, 2]
    assert all(np.isfinite([r["loss_d"], r["loss_g"]]).all() for r in records)

"""The remedies made for mode collapse: PacGAN's packing (--pack: D judges consecutive samples
side by side, all real or all fake) and ProGAN's minibatch standard deviation layer
(--minibatch-std), each refused where a discriminator cannot take it; and the networks built
without them are the ones built before they existed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import ganforge
from cli_errors import assert_one_line_error
from ganforge import GanforgeError, TrainConfig
from ganforge.cli import main
from ganforge.data import to_model_range
from ganforge.models import build_model
from ganforge.models.layers import Maxout, MinibatchStd
from tiny import TINY_POINTS, tiny_flags, translator_options


def point_family(**options):
    """A tiny mlp family of 2-D points (as a run on ring8 builds it)."""
    options = {"model": "mlp", "data": "ring8", "point_dims": 2, "width": 8, "z_dim": 2, **options}
    return build_model(TrainConfig(**options), None, None)


def image_family(model: str = "mlp", channels: int = 1, **options):
    config = TrainConfig(model=model, width=8, z_dim=8, **options)
    return build_model(config, 28, channels)


def d_outputs(family) -> list[torch.Size]:
    """The shape of every output D gives from now on."""
    shapes: list[torch.Size] = []
    family.networks["discriminator"].register_forward_hook(
        lambda module, args, output: shapes.append(output.shape)
    )
    return shapes


def d_inputs(family) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    family.networks["discriminator"].register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone())
    )
    return seen


def side_by_side(samples: torch.Tensor) -> torch.Tensor:
    """Pairs of consecutive samples concatenated along dim 1, written out by hand."""
    return torch.cat([samples[0::2], samples[1::2]], dim=1)


# ---- --pack ------------------------------------------------------------------------------


@pytest.mark.parametrize(("pack", "logits"), [(1, 16), (2, 8), (4, 4)])
def test_d_gives_one_logit_per_pack_in_both_phases(pack, logits):
    torch.manual_seed(0)
    family = point_family(pack=pack, batch_size=16)
    shapes = d_outputs(family)
    batch = {"images": torch.randn(16, 2)}
    family.phase_loss("discriminator", batch)
    family.phase_loss("generator", batch)
    assert shapes == [torch.Size([logits])] * 3  # real, fake; then G's fakes


def test_a_packed_d_takes_pack_times_the_inputs():
    assert point_family().networks["discriminator"].net[1].in_features == 2
    assert point_family(pack=2).networks["discriminator"].net[1].in_features == 4
    assert image_family(pack=2).networks["discriminator"].net[1].in_features == 2 * 28 * 28
    for channels in (1, 3):
        dcgan = image_family("dcgan", channels, pack=2).networks["discriminator"]
        first = next(m for m in dcgan.modules() if isinstance(m, nn.Conv2d))
        assert first.in_channels == 2 * channels


def test_d_judges_real_and_fake_packs_apart():
    """The D phase's first input is the real batch packed in pairs, its second the fakes."""
    torch.manual_seed(0)
    family = point_family(pack=2, batch_size=8)
    seen = d_inputs(family)
    real = torch.randn(8, 2)
    family.phase_loss("discriminator", {"images": real})
    assert [s.shape for s in seen] == [torch.Size([4, 4])] * 2
    assert torch.equal(seen[0], side_by_side(real))
    assert not torch.equal(seen[1], side_by_side(real))


def test_a_packs_logit_reads_every_sample_of_the_pack():
    torch.manual_seed(0)
    family = point_family(pack=2)
    discriminator = family.networks["discriminator"].eval()
    points = torch.randn(4, 2)
    with torch.no_grad():
        logits = family.discriminate(points)
        assert logits.shape == (2,)
        assert torch.allclose(logits, discriminator(side_by_side(points)))
        second_changed = points.clone()
        second_changed[1] += 1.0  # only the second sample of the first pair
        moved = family.discriminate(second_changed)
    assert moved[0] != logits[0] and moved[1] == logits[1]


def test_packed_images_sit_side_by_side_along_channels(digits):
    family = image_family("dcgan", pack=2)
    discriminator = family.networks["discriminator"].eval()
    images = to_model_range(digits.images[:4])
    with torch.no_grad():
        assert torch.allclose(family.discriminate(images), discriminator(side_by_side(images)))


def test_the_batch_size_must_be_a_multiple_of_the_pack(tmp_path, capsys):
    with pytest.raises(GanforgeError, match="^--pack:"):
        TrainConfig.from_dict({"pack": 3, "batch_size": 16})
    TrainConfig.from_dict({"pack": 4, "batch_size": 16})  # a multiple
    out = tmp_path / "run"
    assert main(tiny_flags(out, pack=3, **{"batch-size": 16})) == 2
    assert_one_line_error(capsys, "--pack", "--batch-size 16")
    assert not out.exists()


@pytest.mark.parametrize("model", ["cgan", "acgan", "pix2pix", "cyclegan", "vae"])
@pytest.mark.parametrize("flag", [["--pack=2"], ["--minibatch-std"]])
def test_models_whose_d_cannot_take_it_refuse_it(tmp_path, capsys, model, flag):
    """A conditional D judges a sample with its class, a translator's D a pair of images, and
    the VAE has no D: the flag is refused by name, not ignored."""
    out = tmp_path / "run"
    assert main(tiny_flags(out, model=model, **translator_options(model)) + flag) == 2
    assert_one_line_error(capsys, flag[0].split("=")[0])
    assert not out.exists()


# ---- Maxout (--d-maxout) -------------------------------------------------------------------


def test_each_maxout_unit_is_the_largest_of_its_own_pieces():
    layer = Maxout(2, size=2, pieces=3)
    with torch.no_grad():  # rows 0-2: unit 0's pieces; rows 3-5: unit 1's
        layer.linear.weight.copy_(
            torch.tensor([[1.0, 0], [0, 1], [-1, -1], [2, 0], [0, -2], [0, 0]])
        )
        layer.linear.bias.copy_(torch.tensor([0.0, 0, 0, 0, 0, 0.5]))
    x = torch.tensor([[3.0, -1.0], [-2.0, -4.0]])
    # unit 0: max(x0, x1, -x0-x1); unit 1: max(2 x0, -2 x1, 0.5), by hand
    expected = torch.tensor([[3.0, 6.0], [6.0, 8.0]])
    assert torch.equal(layer(x), expected)


def test_d_maxout_builds_the_papers_discriminator():
    config = TrainConfig(model="mlp", data="ring8", point_dims=2, z_dim=2)
    config = config.replace(d_layers="20,20", d_maxout=5)
    discriminator = build_model(config, None, None).networks["discriminator"]
    units = [m for m in discriminator.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.size, m.pieces) for m in units] == [(2, 20, 5), (20, 20, 5)]
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in discriminator.modules())
    assert discriminator(torch.randn(7, 2)).shape == (7,)


# ---- MinibatchStd --------------------------------------------------------------------------


def population_std_mean(samples: np.ndarray) -> float:
    """The mean over features of the std over samples (dividing by N), by hand."""
    return float(np.sqrt(((samples - samples.mean(axis=0)) ** 2).mean(axis=0)).mean())


def test_minibatch_std_appends_the_mean_std_of_the_group():
    x = torch.tensor(
        [[0.0, 1.0, -2.0], [1.0, 1.0, 0.0], [2.0, 3.0, 2.0], [5.0, 1.0, 4.0]], dtype=torch.float32
    )
    out = MinibatchStd(group_size=4)(x)
    assert out.shape == (4, 4)
    assert torch.equal(out[:, :3], x)
    # population stds of the columns: [0,1,2,5] sqrt(3.5), [1,1,3,1] sqrt(0.75), [-2,0,2,4] sqrt(5)
    expected = (np.sqrt(3.5) + np.sqrt(0.75) + np.sqrt(5.0)) / 3
    assert population_std_mean(x.numpy()) == pytest.approx(expected)
    assert torch.allclose(out[:, 3], torch.full((4,), expected, dtype=torch.float32), atol=1e-6)


def test_minibatch_std_of_identical_samples_is_the_epsilons_root():
    x = torch.ones(4, 5) * 0.3
    feature = MinibatchStd()(x)[:, -1]
    assert torch.allclose(feature, torch.full((4,), 1e-4), atol=1e-7)  # sqrt(1e-8)


def test_minibatch_std_of_feature_maps_is_one_more_constant_map():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3, 3)
    out = MinibatchStd()(x)
    assert out.shape == (4, 3, 3, 3)
    assert torch.equal(out[:, :2], x)
    expected = population_std_mean(x.reshape(4, -1).numpy())
    assert torch.allclose(out[:, 2], torch.full((4, 3, 3), expected), atol=1e-6)


def test_minibatch_std_groups_samples_n_over_group_apart():
    """Batch of 8, groups of 4: samples 0, 2, 4, 6 form one group, 1, 3, 5, 7 the other."""
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    x[1::2] *= 10  # the odd group spreads ten times as far
    feature = MinibatchStd(group_size=4)(x)[:, -1]
    even = population_std_mean(x[0::2].numpy())
    odd = population_std_mean(x[1::2].numpy())
    assert odd > 5 * even
    assert torch.allclose(feature[0::2], torch.full((4,), even), atol=1e-5)
    assert torch.allclose(feature[1::2], torch.full((4,), odd), atol=1e-5)


def test_a_batch_not_divisible_by_the_group_is_one_group():
    torch.manual_seed(0)
    x = torch.randn(6, 3)
    feature = MinibatchStd(group_size=4)(x)[:, -1]
    expected = population_std_mean(x.numpy())
    assert torch.allclose(feature, torch.full((6,), expected), atol=1e-6)


def test_with_the_layer_d_judges_a_sample_by_the_others_too():
    """Without the layer an mlp D's logit for sample 0 ignores sample 1; with it, it does not."""
    torch.manual_seed(0)
    points = torch.randn(4, 2)
    spread = points.clone()
    spread[1] *= 50
    for minibatch_std, depends in ((False, False), (True, True)):
        discriminator = point_family(minibatch_std=minibatch_std).networks["discriminator"]
        with torch.no_grad():
            changed = discriminator(spread)[0] != discriminator(points)[0]
        assert bool(changed) == depends


def test_the_layer_sits_before_ds_last_layer_with_one_more_input():
    mlp = point_family(minibatch_std=True).networks["discriminator"].net
    assert isinstance(mlp[-2], MinibatchStd) and mlp[-1].in_features == 4 * 8 + 1
    dcgan = image_family("dcgan", minibatch_std=True).networks["discriminator"].net
    convs = [m for m in dcgan if isinstance(m, nn.Conv2d)]
    assert isinstance(dcgan[-2], MinibatchStd)
    assert convs[-1].in_channels == convs[-2].out_channels + 1


def test_dcgan_with_both_remedies_trains_and_resumes(tmp_path):
    out = tmp_path / "run"
    assert main(tiny_flags(out, model="dcgan", pack=2) + ["--minibatch-std"]) == 0
    run = ganforge.load_run(out)
    assert run.config.minibatch_std and run.config.pack == 2 and run.step == 2
    assert all(np.isfinite(r["loss_d"]) for r in run.metrics())
    # the checkpoint's D (with the layer, packed inputs) loads into the D the config builds
    assert main(["train", "--resume", str(out), "--steps", "3", "--no-progress"]) == 0
    assert ganforge.load_run(out).step == 3


# ---- without the new flags, the networks of before -----------------------------------------


def test_an_image_mlp_without_the_new_flags_is_unchanged():
    family = image_family()  # width 8: G's hidden 32, 64, 128; D's 64, 32
    shapes = {k: tuple(v.shape) for k, v in family.networks.state_dict().items()}
    assert shapes == {
        "generator.net.0.weight": (32, 8),
        "generator.net.0.bias": (32,),
        "generator.net.2.weight": (64, 32),
        "generator.net.2.bias": (64,),
        "generator.net.4.weight": (128, 64),
        "generator.net.4.bias": (128,),
        "generator.net.6.weight": (784, 128),
        "generator.net.6.bias": (784,),
        "discriminator.net.1.weight": (64, 784),
        "discriminator.net.1.bias": (64,),
        "discriminator.net.3.weight": (32, 64),
        "discriminator.net.3.bias": (32,),
        "discriminator.net.5.weight": (1, 32),
        "discriminator.net.5.bias": (1,),
    }
    generator = family.networks["generator"]
    assert isinstance(generator.net[-1], nn.Tanh)
    with torch.no_grad():
        images = generator(100 * torch.randn(16, 8))
    assert images.shape == (16, 1, 28, 28) and images.abs().max() <= 1
    assert not any(isinstance(m, MinibatchStd) for m in family.networks.modules())
    assert family.remedies.pack == 1


def test_a_points_generator_is_not_squashed_to_the_unit_square():
    generator = point_family().networks["generator"]
    assert not isinstance(generator.net[-1], nn.Tanh)
    with torch.no_grad():
        generator.net[-1].weight.zero_()
        generator.net[-1].bias.fill_(3.0)
        assert (generator(torch.zeros(4, 2)) == 3.0).all()


def test_dcgan_without_the_new_flags_is_unchanged():
    discriminator = image_family("dcgan").networks["discriminator"]
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == 1
    assert convs[-1].in_channels == convs[-2].out_channels
    assert not any(isinstance(m, MinibatchStd) for m in discriminator.modules())


# ---- --feature-matching ------------------------------------------------------------------


def mean_hidden(discriminator, samples: torch.Tensor) -> torch.Tensor:
    """The mean of D's last hidden layer, run layer by layer here (every layer but the logit)."""
    x = samples
    for layer in list(discriminator.net)[:-1]:
        x = layer(x)
    return x.mean(0)


def test_feature_matching_is_gs_loss_instead_of_ds_verdict():
    family = point_family(feature_matching=True)
    real = torch.randn(16, 2)
    torch.manual_seed(5)
    loss, stats = family.phase_loss("generator", {"images": real, "labels": -torch.ones(16)})
    torch.manual_seed(5)
    fake = family.generator(torch.randn(16, 2))
    discriminator = family.discriminator
    expected = (mean_hidden(discriminator, real) - mean_hidden(discriminator, fake)).pow(2).sum()
    assert torch.allclose(loss, expected)
    assert not torch.allclose(loss, family.g_loss(discriminator(fake)))  # not D's verdict
    (grad,) = torch.autograd.grad(loss, family.generator.net[0].weight)
    assert grad.abs().sum() > 0  # G learns through it
    plain = point_family()
    plain.networks.load_state_dict(family.networks.state_dict())
    torch.manual_seed(5)
    plain_loss, _ = plain.phase_loss("generator", {"images": real, "labels": -torch.ones(16)})
    assert torch.allclose(plain_loss, plain.g_loss(discriminator(fake)))


def test_feature_matching_reads_packed_features_of_dcgan():
    family = image_family("dcgan", feature_matching=True, pack=2)
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    fake = torch.rand(8, 1, 28, 28) * 2 - 1
    d = family.discriminator
    expected = (
        (
            d.features(side_by_side(real)).flatten(1).mean(0)
            - d.features(side_by_side(fake)).flatten(1).mean(0)
        )
        .pow(2)
        .sum()
    )
    assert torch.allclose(family.feature_distance(real, fake), expected)


@pytest.mark.parametrize("model", ["cgan", "pix2pix", "vae"])
def test_feature_matching_is_refused_where_no_features_of_d_can_be_matched(model, tmp_path, capsys):
    out = tmp_path / "run"
    flags = tiny_flags(out, model=model, **translator_options(model))
    assert main([*flags, "--feature-matching"]) != 0
    assert_one_line_error(capsys, "--feature-matching")
    assert not out.exists()


def test_a_point_run_with_feature_matching_trains(tmp_path):
    run = ganforge.train(
        **{**TINY_POINTS, "steps": 6, "log_every": 3},
        feature_matching=True,
        out=str(tmp_path / "fm"),
    )
    losses = [record["loss_g"] for record in run.metrics()]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[0] != losses[1]

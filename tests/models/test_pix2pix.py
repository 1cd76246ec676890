"""Pix2Pix: the U-Net's shapes, depth, skips and dropout; the PatchGAN's map and its 70x70
receptive field; the family's phases, statistics and remedies; L1 falling on the demo task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.cli import main
from ganforge.data import load_dataset, to_model_range
from ganforge.models import build_model, model_kind
from ganforge.models.pix2pix import (
    PatchDiscriminator,
    Pix2PixFamily,
    UNetGenerator,
    pair,
    patch_map_size,
    unet_depth,
)


def tiny_pix2pix(resolution: int = 32, channels: int = 1, width: int = 8, **options):
    config = TrainConfig.from_dict({"model": "pix2pix", "width": width, **options})
    return build_model(config, resolution, channels)


def pix2pix_batch(n: int = 8, resolution: int = 32) -> dict[str, torch.Tensor]:
    pairs = load_dataset("mnist-mini-edges", resolution=resolution, split="test")
    picks = torch.arange(n) * (len(pairs) // n)
    return {
        "sources": to_model_range(pairs.sources_at(picks)),
        "images": to_model_range(pairs.images_at(picks)),
        "labels": pairs.labels[picks],
    }


def test_registered_as_an_image_conditioned_family():
    family = tiny_pix2pix()
    assert model_kind("pix2pix").translator
    assert isinstance(family, Pix2PixFamily) and family.kind.translator
    assert family.sampler == "generator" and family.num_classes == 0
    assert [p.name for p in family.phases] == ["discriminator", "generator"]
    assert family.phases[0].repeats == "d_steps" and not family.phases[1].fresh_batch
    assert family.sample_latent(5).shape == (5, 0)  # no noise: dropout is G's randomness


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("resolution", "patches"), [(32, 2), (64, 6), (256, 30)])
def test_shapes_and_ranges(resolution, patches, channels):
    torch.manual_seed(0)
    family = tiny_pix2pix(resolution, channels, width=4)
    generator, discriminator = family.networks["generator"], family.networks["discriminator"]
    sources = torch.rand(2, channels, resolution, resolution) * 2 - 1
    images = family.sample(generator, family.sample_latent(2), sources)
    assert images.shape == (2, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    logits = discriminator(pair(sources, images))
    assert logits.shape == (2, 1, patches, patches)  # one logit per patch
    assert patch_map_size(resolution) == patches


@pytest.mark.parametrize(("resolution", "depth"), [(32, 5), (64, 6), (128, 7), (256, 8)])
def test_unet_goes_down_to_one_pixel(resolution, depth):
    generator = UNetGenerator(resolution, 1, width=2)
    assert unet_depth(resolution) == depth and len(generator.encoder) == depth
    bottleneck = torch.zeros(1, 1, resolution, resolution)
    for block in generator.encoder:
        bottleneck = block(bottleneck)
    assert bottleneck.shape[-2:] == (1, 1)


def test_paper_widths_and_dropout_at_256():
    generator = UNetGenerator(256, 3, width=64)
    convolutions = [
        next(m for m in block if isinstance(m, nn.Conv2d)) for block in generator.encoder
    ]
    encoder_widths = [conv.out_channels for conv in convolutions]
    assert encoder_widths == [64, 128, 256, 512, 512, 512, 512, 512]  # C64-C128-...-C512
    dropouts = [any(isinstance(m, nn.Dropout) for m in block) for block in generator.decoder]
    assert dropouts == [True, True, True, False, False, False, False]  # CD512 x 3, then C
    assert all(m.p == 0.5 for m in generator.modules() if isinstance(m, nn.Dropout))
    assert isinstance(generator.output[-1], nn.Tanh)


def test_skip_connections_carry_the_source_past_the_bottleneck():
    """With the 1x1 bottleneck zeroed, an encoder-decoder without skips would give one image
    for every input; the U-Net still maps each source to its own output, and a change of one
    pixel changes the output near that pixel most."""
    torch.manual_seed(0)
    generator = UNetGenerator(32, 1, width=8).eval()
    generator.encoder[-1].register_forward_hook(lambda module, inputs, output: output * 0)
    first, second = torch.rand(2, 1, 1, 32, 32) * 2 - 1
    assert not torch.allclose(generator(first), generator(second))
    poked = first.clone()
    poked[..., 4, 4] += 1.0
    change = (generator(poked) - generator(first)).abs()[0, 0]
    assert change.sum() > 0
    assert change[:12, :12].sum() > 10 * change[20:, 20:].sum()  # local: through the skips


def test_dropout_is_the_only_randomness():
    torch.manual_seed(0)
    generator = UNetGenerator(32, 1, width=8)
    sources = torch.rand(4, 1, 32, 32) * 2 - 1
    assert not torch.equal(generator(sources), generator(sources))  # training: dropout on
    generator.eval()
    assert torch.equal(generator(sources), generator(sources))


def test_patchgan_receptive_field_is_70_at_256():
    """The gradient of one central logit reaches exactly a 70x70 window of the input (eval
    mode: batchnorm then mixes no pixels of other places or images)."""
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(256, 3, width=4).eval()
    pairs = torch.randn(1, 6, 256, 256, requires_grad=True)
    logits = discriminator(pairs)
    assert logits.shape == (1, 1, 30, 30)
    logits[0, 0, 15, 15].backward()
    reached = pairs.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = reached.any(dim=1).nonzero(), reached.any(dim=0).nonzero()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70
    assert reached.sum() == 70 * 70


def test_patchgan_judges_the_pair_and_uses_no_dense_layers():
    discriminator = PatchDiscriminator(64, 3, width=8)
    first = discriminator.net[0]
    assert isinstance(first, nn.Conv2d) and first.in_channels == 6  # source and image
    assert not any(isinstance(m, (nn.Linear, nn.BatchNorm2d)) for m in discriminator.net[:2])
    strides = [m.stride for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert strides == [(2, 2)] * 3 + [(1, 1)] * 2  # n_layers = 3


def test_instance_norm_replaces_batch_norm():
    family = tiny_pix2pix(norm="instance")
    modules = list(family.networks.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in modules)
    assert any(isinstance(m, nn.InstanceNorm2d) for m in modules)
    assert any(isinstance(m, nn.BatchNorm2d) for m in tiny_pix2pix().networks.modules())


def g_phase_by_hand(family, batch: dict, seed: int, l1_weight: float) -> torch.Tensor:
    """G's objective recomputed: -mean log σ(D(source, G(source))) + λ mean |G(source) - target|,
    with G's dropout drawn from the same seed as the phase's."""
    torch.manual_seed(seed)
    fake = family.networks["generator"](batch["sources"])
    logits = family.networks["discriminator"](torch.cat([batch["sources"], fake], 1)).double()
    adversarial = -torch.nn.functional.logsigmoid(logits).mean()
    return adversarial + l1_weight * (fake - batch["images"]).abs().double().mean()


def test_phase_losses_and_logged_statistics():
    torch.manual_seed(0)
    family = tiny_pix2pix()  # the default --l1-weight: the paper's λ = 100
    batch = pix2pix_batch()
    torch.manual_seed(1)
    loss_d, stats_d = family.phase_loss("discriminator", batch)
    assert loss_d.requires_grad and {"loss_d", "d_real", "d_fake", "d_accuracy"} <= set(stats_d)
    # D's loss on its patch logits, real target 0.9 (the default smoothing), fake target 0
    torch.manual_seed(1)
    discriminator = family.networks["discriminator"]
    with torch.no_grad():
        fake = family.networks["generator"](batch["sources"])
    r = discriminator(torch.cat([batch["sources"], batch["images"]], 1)).double()
    f = discriminator(torch.cat([batch["sources"], fake], 1)).double()
    logsigmoid = torch.nn.functional.logsigmoid
    expected_d = (-0.9 * logsigmoid(r) - 0.1 * logsigmoid(-r)).mean() - logsigmoid(-f).mean()
    assert loss_d.item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert stats_d["d_real"].item() == pytest.approx(torch.sigmoid(r).mean().item(), rel=1e-5)
    assert stats_d["d_fake"].item() == pytest.approx(torch.sigmoid(f).mean().item(), rel=1e-5)
    accuracy = ((r > 0).double().mean() + (f < 0).double().mean()) / 2
    assert stats_d["d_accuracy"].item() == pytest.approx(accuracy.item())

    torch.manual_seed(2)
    loss_g, stats_g = family.phase_loss("generator", batch)
    assert {"loss_g", "loss_l1", "d_fake_g"} <= set(stats_g)
    assert not any(value.requires_grad for value in stats_g.values())
    # G's objective: adversarial + 100 * L1, recomputed by hand with the same dropout
    assert loss_g.item() == pytest.approx(g_phase_by_hand(family, batch, 2, 100.0).item(), rel=1e-5)
    assert loss_g.item() == pytest.approx(
        stats_g["loss_g"].item() + 100 * stats_g["loss_l1"].item(), rel=1e-5
    )
    assert stats_g["loss_l1"].item() > 0.01  # so that a wrong λ shows in the total
    with pytest.raises(ValueError):
        family.phase_loss("encoder", batch)


def test_the_l1_weight_given_on_the_command_line_is_the_one_g_minimises(tmp_path):
    out = tmp_path / "run"
    flags = ["--model", "pix2pix", "--data", "mnist-mini-edges", "--resolution", "32"]
    flags += ["--width", "4", "--batch-size", "4", "--steps", "1", "--n-grid", "2"]
    assert main(["train", *flags, "--l1-weight", "7", "--out", str(out), "--no-progress"]) == 0
    run = ganforge.load_run(out)
    assert run.config.model_options.l1_weight == 7.0
    family = run.load()  # built from the saved config, as every later command builds it
    batch = pix2pix_batch(4)
    torch.manual_seed(3)
    loss_g, _ = family.phase_loss("generator", batch)
    assert loss_g.item() == pytest.approx(g_phase_by_hand(family, batch, 3, 7.0).item(), rel=1e-5)
    assert loss_g.item() != pytest.approx(g_phase_by_hand(family, batch, 3, 100.0).item(), rel=1e-3)


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "hinge", "spectral_norm": True},
        {"gp": 10.0},
        {"r1": 1.0},
        {"diffaugment": "translation,cutout"},
    ],
)
def test_remedies_apply_to_pairs(options):
    torch.manual_seed(0)
    family = tiny_pix2pix(**options)
    loss, stats = family.phase_loss("discriminator", pix2pix_batch(4))
    loss.backward()
    assert torch.isfinite(loss)
    for name in ("gp", "r1"):
        assert (name in stats) == (name in options)


def test_color_augmentation_and_odd_sizes_are_clear_errors():
    with pytest.raises(GanforgeError, match="--diffaugment"):
        tiny_pix2pix(diffaugment="color")
    with pytest.raises(
        GanforgeError, match=r"--resolution: pix2pix.* not 28 \(e.g. --resolution 32\)"
    ):
        tiny_pix2pix(28)
    with pytest.raises(GanforgeError, match="--resolution"):
        tiny_pix2pix(100)


def test_l1_falls_on_the_edges_to_digits_task(tmp_path):
    run = ganforge.train(
        model="pix2pix",
        data="mnist-mini-edges",
        resolution=32,
        width=8,
        batch_size=16,
        steps=40,
        log_every=10,
        sample_every=100,
        checkpoint_every=100,
        n_grid=8,
        progress=False,
        out=str(tmp_path / "run"),
    )
    l1 = [record["loss_l1"] for record in run.metrics()]
    assert len(l1) == 4
    assert l1[-1] < 0.85 * l1[0]
    assert all(later < earlier for earlier, later in zip(l1, l1[1:]))


def test_resume_is_exact(tmp_path):
    """Dropout draws from the saved RNG, pairs come in the saved order: 6 steps straight and
    3 + resume to 6 give the same weights."""
    options = {
        "model": "pix2pix",
        "data": "mnist-mini-inpaint",
        "resolution": 32,
        "width": 4,
        "batch_size": 8,
        "hflip": True,
        "progress": False,
        "checkpoint_every": 3,
        "n_grid": 2,
    }
    straight = ganforge.train(**options, steps=6, out=str(tmp_path / "straight"))
    ganforge.train(**options, steps=3, out=str(tmp_path / "halves"))
    resumed = ganforge.train(resume=tmp_path / "halves", steps=6)
    a, b = straight.load().networks.state_dict(), resumed.load().networks.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

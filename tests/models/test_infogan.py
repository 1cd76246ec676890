"""InfoGAN: the codes in G's input, the mutual-information term through Q (D's extra head) in
both phases, the code traversals, and the categorical code finding the digit classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.data import to_model_range
from ganforge.metrics.code_alignment import matched_accuracy
from ganforge.models import build_model, model_kind


def family(**options):
    config = TrainConfig.from_dict({"model": "infogan", "width": 8, "z_dim": 6, **options})
    return build_model(config, 28, 1)


def test_g_takes_noise_a_one_hot_category_and_uniform_continuous_codes():
    torch.manual_seed(0)
    infogan = family(categories=5, continuous_codes=3)
    assert model_kind("infogan").latent_codes and infogan.kind.latent_codes
    z = infogan.sample_latent(1000)
    assert z.shape == (1000, 6 + 5 + 3) and infogan.z_dim == 14
    one_hot = z[:, 6:11]
    assert torch.equal(one_hot.sum(1), torch.ones(1000)) and set(one_hot.unique().tolist()) == {
        0.0,
        1.0,
    }
    assert set(one_hot.argmax(1).tolist()) == set(range(5))  # every value drawn
    continuous = z[:, 11:]
    assert continuous.min() >= -1 and continuous.max() <= 1 and continuous.std() > 0.5
    assert infogan.generator.net[0].in_channels == 14  # G reads all of it
    assert infogan.discriminator.outputs == 1 + 5 + 3  # D's logit, then Q's


def test_the_information_term_is_cross_entropy_plus_half_the_squared_error():
    infogan = family(categories=3, continuous_codes=2, info_weight=0.5)
    z = infogan.latent(torch.zeros(2, 6), torch.tensor([2, 0]), torch.tensor([[0.5, -1], [0, 1]]))
    head = torch.tensor([[0.1, 0.2, 3.0, 0.4, -1.0], [1.0, 0.0, 0.0, 0.0, 0.5]])
    stats = {}
    loss = infogan.information_loss(head, z, stats, "loss_info")
    ce = F.cross_entropy(head[:, :3], torch.tensor([2, 0]))
    gaussian = 0.5 * ((0.4 - 0.5) ** 2 + (-1.0 + 1) ** 2 + 0**2 + (0.5 - 1) ** 2) / 2
    assert stats["loss_info"].item() == pytest.approx(ce.item() + gaussian, rel=1e-6)
    assert loss.item() == pytest.approx(0.5 * (ce.item() + gaussian), rel=1e-6)
    assert stats["info_accuracy"].item() == 1.0  # Q read both categories back


def test_q_learns_in_d_phase_and_g_through_q_in_its_own(digits):
    torch.manual_seed(0)
    infogan = family()
    batch = {"images": to_model_range(digits.images[:8]), "labels": digits.labels[:8]}
    loss, stats = infogan.phase_loss("discriminator", batch)
    assert loss.item() == pytest.approx(stats["loss_d"].item() + stats["loss_info"].item())
    grads = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(1)
        infogan.info_weight = weight
        infogan.generator.zero_grad()
        loss, stats = infogan.phase_loss("generator", batch)
        loss.backward()
        grads[weight] = infogan.generator.net[0].weight.grad.clone()
        assert "loss_info_g" in stats
    assert not torch.allclose(grads[0.0], grads[1.0])  # the term reaches G's weights


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"categories": 0, "continuous_codes": 0}, "infogan needs a code"),
        ({"categories": 1}, "--categories: a code of one value"),
        ({"info_weight": -1.0}, "--info-weight"),
        ({"pack": 2}, "--pack: infogan"),
        ({"replay": 8}, "--replay: infogan"),
    ],
)
def test_impossible_codes_and_remedies_are_refused(options, message):
    with pytest.raises(GanforgeError, match=message):
        family(**options)


def test_the_traversal_sweeps_one_continuous_code_per_block_with_one_noise():
    infogan = family(categories=4, continuous_codes=2)
    seen = []
    infogan.sample = lambda network, z, condition=None: (
        seen.append(z),
        torch.zeros(len(z), 1, 28, 28),
    )[1]
    images, captions = infogan.traversal(infogan.generator, seed=3, columns=5, span=2.0)
    assert images.shape == (2 * 4 * 5, 28, 28, 1) and len(captions) == 2
    for code, z in enumerate(seen):
        assert torch.equal(z[:, :6], z[:1, :6].expand(20, -1))  # one noise for the block
        categories = z[:, 6:10].argmax(1).view(4, 5)
        assert torch.equal(categories, torch.arange(4)[:, None].expand(4, 5))  # a row each
        sweep = z[:, 10 + code].view(4, 5)
        assert torch.allclose(sweep, torch.linspace(-2, 2, 5).expand(4, 5))
        assert torch.equal(z[:, 10 + (1 - code)], torch.zeros(20))  # the other code at 0


def test_alignment_matches_each_code_value_to_one_class():
    predicted = np.array([[3, 3, 3, 1], [2, 2, 0, 0], [3, 3, 3, 3]])
    # value 2 (four 3s) takes class 3, value 0 then its 1 (one), value 1 its 2 or its 0 (two)
    assert matched_accuracy(predicted, 4) == pytest.approx((4 + 1 + 2) / 12)
    # an untrained G whose every sample reads as one class: 1/K, not 100%
    assert matched_accuracy(np.full((10, 50), 7), 10) == pytest.approx(0.1)


@pytest.mark.slow
def test_the_categorical_code_finds_the_digit_classes_well_above_chance(tmp_path):
    """800 steps of a small InfoGAN on mnist-mini (about a minute on one thread): the packaged
    digit classifier reads each value of the code as one digit for about a third of the samples
    (0.37 measured; chance, and an untrained G, 0.1-0.12)."""
    from ganforge.metrics.code_alignment import categorical_alignment
    from ganforge.metrics.registry import load_extractor

    options = {"model": "infogan", "data": "mnist-mini", "width": 16, "continuous_codes": 0}
    common = {"progress": False, "device": "cpu", "sample_every": 10**6, "doctor": False}
    classifier = load_extractor("mnist")
    untrained = ganforge.train(out=str(tmp_path / "untrained"), steps=1, **options, **common)
    before, _ = categorical_alignment(untrained.load(), untrained.generator(), classifier, 100)
    run = ganforge.train(out=str(tmp_path / "run"), steps=800, **options, **common)
    after, predicted = categorical_alignment(run.load(), run.generator(), classifier, 100)
    assert before < 0.2
    assert after > 0.3 and after > 2 * before
    assert len(set(np.bincount(row).argmax() for row in predicted)) >= 5  # not one digit


def test_latent_codes_writes_the_traversal_picture_and_refuses_bad_input(tmp_path, capsys):
    from PIL import Image

    from cli_errors import assert_one_line_error
    from ganforge.cli import main
    from tiny import TINY_OPTIONS

    run = ganforge.train(
        **{**TINY_OPTIONS, "model": "infogan", "steps": 2}, out=str(tmp_path / "i")
    )
    out = tmp_path / "codes.png"
    argv = ["latent", "codes", str(run.path), "--out", str(out), "--columns", "3"]
    assert main(argv) == 0
    assert "continuous code 1 from -2 to 2; continuous code 2" in capsys.readouterr().out
    picture = np.asarray(Image.open(out).convert("L"))
    cell = 56 + 2  # a 28 px digit enlarged twice, and the padding
    # two blocks (one per continuous code) of 10 rows by 3 columns, each with a caption strip
    assert picture.shape[1] == 3 * cell + 2
    assert picture.shape[0] > 2 * (10 * cell + 2)
    for bad, flag in (("--columns", "1"), ("--span", "0"), ("--seed", "-1")):
        assert main([*argv[:-2], bad, flag]) == 2
        assert_one_line_error(capsys, bad)
    dcgan = ganforge.train(
        **{**TINY_OPTIONS, "model": "dcgan", "steps": 1}, out=str(tmp_path / "d")
    )
    assert main(["latent", "codes", str(dcgan.path), "--out", str(tmp_path / "no.png")]) == 2
    assert_one_line_error(capsys, "run '", "no codes")
    assert not (tmp_path / "no.png").exists()

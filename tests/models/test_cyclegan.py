"""CycleGAN: its networks, its objective against a hand computation, the pool of earlier fakes,
unpaired data (folders and the offline demo whose true pairs only the evaluator knows), both
translation directions, and training through the unchanged loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from torch import nn

import ganforge
from cli_errors import assert_one_line_error
from ganforge.cli import main
from ganforge.config import TrainConfig
from ganforge.data import LoadOptions, load_dataset, open_dataset
from ganforge.errors import GanforgeError
from ganforge.models import build_model, describe_model, model_kind
from ganforge.models.cyclegan import DEFAULTS, CycleGANFamily, ImagePool, ResidualBlock

TINY = {"width": 4, "z_dim": 8, "batch_size": 4, "steps": 2, "n_grid": 4, "progress": False}
DEMO = {"model": "cyclegan", "data": "mnist-mini-edges-unpaired", "resolution": 32, **TINY}


def tiny_cyclegan(resolution: int = 32, **options) -> CycleGANFamily:
    config = TrainConfig.from_dict({"model": "cyclegan", "width": 4, **DEFAULTS, **options})
    return build_model(config, resolution, 1)


def test_the_generators_map_each_side_to_the_other_at_any_multiple_of_four():
    for resolution in (28, 32):
        family = tiny_cyclegan(resolution)
        generators = family.networks["generator"]
        images = torch.rand(2, 1, resolution, resolution) * 2 - 1
        for network in (generators.ab, generators.ba):
            out = network(images)
            assert out.shape == images.shape and out.abs().max() <= 1
    with pytest.raises(GanforgeError, match="^--resolution: .* multiple of 4"):
        tiny_cyclegan(30)


def test_residual_blocks_follow_the_paper_and_the_option():
    def blocks(resolution, **options):
        config = TrainConfig.from_dict(
            {"model": "cyclegan", "resolution": resolution, "channels": 3, **options}
        )
        ab = describe_model(config).networks["generator"].ab
        return sum(isinstance(m, ResidualBlock) for m in ab.modules())

    assert (blocks(256), blocks(128), blocks(32)) == (9, 6, 3)
    assert blocks(32, res_blocks=5) == 5


def test_its_kind_and_its_defaults():
    kind = model_kind("cyclegan")
    assert kind.translator and kind.data == "unpaired" and not kind.draws_from_noise
    config = TrainConfig.from_dict({"model": "cyclegan"})
    assert (config.model_options.cycle_weight, config.model_options.identity_weight) == (10.0, 0.5)
    assert config.model_options.image_pool == 50


def test_the_generator_loss_is_adversarial_plus_cycle_plus_identity():
    torch.manual_seed(0)
    family = tiny_cyclegan(cycle_weight=3.0, identity_weight=0.25, image_pool=0)
    g, d = family.networks["generator"], family.networks["discriminator"]
    a, b = torch.rand(3, 1, 32, 32) * 2 - 1, torch.rand(3, 1, 32, 32) * 2 - 1
    loss, stats = family.phase_loss("generator", {"sources": a, "images": b})
    ls = lambda logits: 0.5 * ((logits - 1) ** 2).mean()  # noqa: E731 - losses.py's least squares
    adversarial = ls(d.b(g.ab(a))) + ls(d.a(g.ba(b)))
    cycle = (g.ba(g.ab(a)) - a).abs().mean() + (g.ab(g.ba(b)) - b).abs().mean()
    identity = (g.ab(b) - b).abs().mean() + (g.ba(a) - a).abs().mean()
    expected = adversarial + 3.0 * cycle + 0.25 * 3.0 * identity
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(stats["loss_cycle"], cycle.detach())
    torch.testing.assert_close(stats["loss_identity"], identity.detach())


def test_the_discriminator_loss_is_the_mean_of_both_sides():
    torch.manual_seed(0)
    family = tiny_cyclegan(image_pool=0)
    g, d = family.networks["generator"], family.networks["discriminator"]
    a, b = torch.rand(3, 1, 32, 32) * 2 - 1, torch.rand(3, 1, 32, 32) * 2 - 1
    loss, stats = family.phase_loss("discriminator", {"sources": a, "images": b})

    def d_ls(real, fake):  # losses.py's least squares, real label 1
        return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())

    with torch.no_grad():
        expected = (d_ls(d.a(a), d.a(g.ba(b))) + d_ls(d.b(b), d.b(g.ab(a)))) / 2
    torch.testing.assert_close(loss.detach(), expected)


def test_the_pool_keeps_the_last_fakes_and_shows_older_ones_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(4, img_resolution=2, img_channels=1)
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2).clone()
    assert torch.equal(pool.query(first), first)  # filling: each fake is shown as it is
    assert int(pool.count) == 4 and torch.equal(pool.images, first)
    shown_older = 0
    for step in range(50):
        fakes = torch.full((4, 1, 2, 2), 100.0 + step)
        before = pool.images.clone()
        shown = pool.query(fakes)
        for image in shown:
            older = any(torch.equal(image, kept) for kept in before)
            assert older or torch.equal(image, fakes[0])
            shown_older += older
        assert int(pool.count) == 4
    assert 0.35 < shown_older / 200 < 0.65
    assert torch.equal(ImagePool(0, 2, 1).query(first), first)  # --image-pool 0: no history


def test_the_demo_hides_its_pairs_from_training_and_keeps_them_for_scoring():
    train = load_dataset("mnist-mini-edges-unpaired")
    paired = load_dataset("mnist-mini-edges")
    assert torch.equal(train.sources, open_dataset("mnist-mini-edges", layout="paired").sources)
    # the same digits, shuffled: a permutation of the paired images, almost never aligned
    aligned = (train.images == paired.images).flatten(1).all(1).float().mean()
    assert aligned < 0.01
    assert torch.equal(
        train.images.flatten(1).sum(1).sort().values, paired.images.flatten(1).sum(1).sort().values
    )
    test = open_dataset(
        "mnist-mini-edges-unpaired", layout="unpaired", options=LoadOptions(split="test")
    )
    truth = open_dataset("mnist-mini-edges", layout="paired", options=LoadOptions(split="test"))
    assert torch.equal(test.sources, truth.sources) and torch.equal(test.images, truth.images)


def _write_images(folder, count, value):
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((8, 8), value + i, dtype=np.uint8)).save(folder / f"{i}.png")


def test_an_unpaired_folder_needs_a_and_b_of_any_sizes(tmp_path):
    _write_images(tmp_path / "data" / "A", 3, 10)
    _write_images(tmp_path / "data" / "B", 5, 200)
    dataset = open_dataset(str(tmp_path / "data"), layout="unpaired")
    assert len(dataset) == 5 and dataset.sources.shape == dataset.images.shape
    assert sorted(dataset.sources[:, 0, 0, 0].tolist()) == [10, 10, 11, 11, 12]
    assert sorted(dataset.images[:, 0, 0, 0].tolist()) == [200, 201, 202, 203, 204]
    _write_images(tmp_path / "half" / "A", 2, 10)
    with pytest.raises(GanforgeError, match="^--data: folder .* has no B/ folder"):
        open_dataset(str(tmp_path / "half"), layout="unpaired")


def test_it_trains_through_the_loop_and_resumes_exactly(tmp_path):
    straight = ganforge.train(**{**DEMO, "steps": 4, "out": str(tmp_path / "a")})
    half = ganforge.train(**{**DEMO, "steps": 2, "out": str(tmp_path / "b")})
    resumed = ganforge.train(resume=half.path, steps=4, progress=False)
    name = "checkpoints/step_0000004.safetensors"
    with (
        safe_open(str(straight.path / name), "pt") as x,
        safe_open(str(resumed.path / name), "pt") as y,
    ):
        keys = [k for k in x.keys() if k.startswith(("networks.", "optimizers."))]
        assert "networks.discriminator.pool_a.images" in keys  # the pools are in the checkpoint
        for key in keys:
            assert torch.equal(x.get_tensor(key), y.get_tensor(key)), key
        assert int(x.get_tensor("networks.discriminator.pool_b.count")) == 16  # 4 steps of 4
    records = [json.loads(line) for line in (straight.path / "metrics.jsonl").open()]
    assert {"loss_d", "loss_g", "loss_cycle", "loss_identity"} <= set(records[-1])
    with Image.open(straight.path / "samples" / "final.png") as grid:
        assert grid.width > grid.height  # rows of a -> G(a) -> F(G(a)) | b -> F(b) -> G(F(b))


def test_translate_goes_both_ways_and_eval_scores_the_hidden_pairs(tmp_path, capsys):
    run = ganforge.train(**{**DEMO, "out": str(tmp_path / "run")})
    source = tmp_path / "in.png"
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(source)
    for direction in ("a2b", "b2a"):
        out = tmp_path / direction
        assert (
            main(
                [
                    "translate",
                    str(run.path),
                    str(source),
                    "--out",
                    str(out),
                    "--direction",
                    direction,
                ]
            )
            == 0
        )
        assert (out / "in.png").is_file()
    assert main(["eval", str(run.path), "--n", "16", "--no-progress"]) == 0
    result = json.loads((run.path / "eval.json").read_text())
    assert set(result["metrics"]) == {"l1", "psnr", "ssim"} and result["n_pairs"] == 16
    assert "test split" in result["pairs"]


def test_a_one_way_translator_refuses_b2a(tmp_path, capsys):
    run = ganforge.train(
        model="pix2pix", data="mnist-mini-edges", resolution=32, out=str(tmp_path / "p"), **TINY
    )
    source = tmp_path / "in.png"
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(source)
    out = tmp_path / "out"
    assert (
        main(["translate", str(run.path), str(source), "--out", str(out), "--direction", "b2a"])
        == 2
    )
    assert_one_line_error(capsys, "--direction", "a2b")
    assert not out.exists()


@pytest.mark.parametrize("flag", [["--gp", "10"], ["--r1", "1"], ["--diffaugment", "cutout"]])
def test_remedies_it_does_not_take_are_one_line_errors(tmp_path, capsys, flag):
    argv = ["train", "--model", "cyclegan", "--data", "mnist-mini-edges-unpaired", *flag]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert_one_line_error(capsys, flag[0], "cyclegan")


def test_it_has_no_batchnorm_to_remove_and_spectral_norm_reaches_both_discriminators():
    family = tiny_cyclegan(spectral_norm=True)
    d = family.networks["discriminator"]
    for side in (d.a, d.b):
        convs = [m for m in side.modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(hasattr(m, "parametrizations") for m in convs)

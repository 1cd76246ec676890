"""Sampling: seeded uint8 NHWC images from a family's network or a saved run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.models import build_model
from ganforge.sampling import generate


@pytest.fixture
def dcgan_family():
    torch.manual_seed(0)
    family = build_model(TrainConfig(model="dcgan", width=4, z_dim=6), 32, 3)
    # move batchnorm running statistics away from their init, as training would
    family.networks.train()
    with torch.no_grad():
        family.networks["generator"](torch.randn(16, 6))
    return family


def test_generate_returns_uint8_nhwc(dcgan_family):
    images = generate(dcgan_family, dcgan_family.networks["generator"], 5, seed=0)
    assert isinstance(images, np.ndarray)
    assert images.dtype == np.uint8
    assert images.shape == (5, 32, 32, 3)
    assert images.std() > 0


def test_generate_is_seeded(dcgan_family):
    network = dcgan_family.networks["generator"]
    first = generate(dcgan_family, network, 6, seed=1)
    assert np.array_equal(first, generate(dcgan_family, network, 6, seed=1))
    assert not np.array_equal(first, generate(dcgan_family, network, 6, seed=2))


def test_generate_leaves_global_rng_and_training_mode_alone(dcgan_family):
    network = dcgan_family.networks["generator"]
    network.train()
    before = torch.get_rng_state()
    generate(dcgan_family, network, 4, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert network.training
    network.eval()
    generate(dcgan_family, network, 4, seed=0)
    assert not network.training


def test_generate_uses_eval_mode_so_chunking_does_not_matter(dcgan_family):
    network = dcgan_family.networks["generator"]
    whole = generate(dcgan_family, network, 7, seed=3)
    chunked = generate(dcgan_family, network, 7, seed=3, batch_size=2)
    assert np.array_equal(whole, chunked)


# ---- Run.sample --------------------------------------------------------------------------------


def test_run_sample_shape_and_dtype(trained_run):
    images = trained_run.sample(16, seed=0)
    assert images.shape == (16, 28, 28, 1)
    assert images.dtype == np.uint8


def test_run_sample_same_seed_same_images(trained_run):
    again = ganforge.load_run(trained_run.path)
    assert np.array_equal(trained_run.sample(9, seed=4), again.sample(9, seed=4))
    assert not np.array_equal(trained_run.sample(9, seed=4), again.sample(9, seed=5))


def test_run_sample_matches_the_raw_generator(trained_run):
    run = ganforge.load_run(trained_run.path)
    family = run.load()
    expected = generate(family, family.networks["generator"], 8, seed=2)
    assert np.array_equal(run.sample(8, seed=2, ema=False), expected)
    ema = run.generator(ema=True)
    assert ema is family.networks["generator_ema"]
    assert np.array_equal(run.sample(8, seed=2), generate(family, ema, 8, seed=2))


def test_run_load_an_older_checkpoint(trained_run):
    (first_step, first), (last_step, _) = trained_run.checkpoints[0], trained_run.checkpoints[-1]
    assert first_step < last_step
    run = ganforge.load_run(trained_run.path)
    newest = run.sample(8, seed=0, ema=False)
    run.load(first)
    assert not np.array_equal(run.sample(8, seed=0, ema=False), newest)


def test_run_sample_needs_at_least_one(trained_run):
    with pytest.raises(GanforgeError, match="^--n:"):
        trained_run.sample(0)


def test_run_without_checkpoint(tmp_path, trained_run):
    (tmp_path / "config.json").write_text((trained_run.path / "config.json").read_text())
    run = ganforge.load_run(tmp_path)
    assert run.step == 0 and run.metrics() == []
    with pytest.raises(GanforgeError, match="no checkpoint"):
        run.sample(4)


def test_load_run_errors(tmp_path):
    with pytest.raises(GanforgeError, match="not a ganforge run"):
        ganforge.load_run(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(GanforgeError, match="config.json"):
        ganforge.load_run(tmp_path)


def test_run_metadata(trained_run):
    assert trained_run.step == trained_run.config.steps
    assert trained_run.metrics()[-1]["step"] == trained_run.step
    assert "mlp" in repr(trained_run) and str(trained_run.step) in repr(trained_run)


def test_loading_and_sampling_leave_the_global_rng_untouched(trained_run):
    run = ganforge.load_run(trained_run.path)
    before = torch.get_rng_state()
    run.sample(4, seed=3)
    assert torch.equal(before, torch.get_rng_state())

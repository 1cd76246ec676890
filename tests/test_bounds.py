"""Absurd sizes a careless user types (issue 15): each is refused before any work with one line
naming the flag (or the file) and the bound, never a hang or an out-of-memory traceback."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from cli_errors import assert_one_line_error
from ganforge import GanforgeError, TrainConfig, bounds
from ganforge.cli import main
from ganforge.models import build_model
from ganforge.models.registry import _MODELS
from ganforge.run import Run
from ganforge.sampling import class_rows
from tiny import tiny_flags


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_the_bounds_are_the_documented_ones():
    """The numbers the messages quote (README: a user never reaches them)."""
    assert (bounds.MAX_RESOLUTION, bounds.MAX_Z_DIM, bounds.MAX_WIDTH) == (1024, 4096, 4096)
    assert (bounds.MAX_NUM_CLASSES, bounds.MAX_D_STEPS, bounds.MAX_GRID) == (10_000, 100, 4096)
    assert (bounds.MAX_SAMPLES, bounds.MAX_EVAL_SAMPLES) == (1_000_000, 200_000)
    assert (bounds.MAX_FRAMES, bounds.MAX_SEED) == (1000, 2**63 - 1)


# ---- training flags --------------------------------------------------------------------------

TRAIN_BOUNDS = [  # flag, an absurd value, the bound as the message writes it
    ("num-classes", 10**9, "10,000"),
    ("d-steps", 10**9, "100"),
    ("resolution", 100_000, "1,024"),
    ("z-dim", 10**8, "4,096"),
    ("width", 10**6, "4,096"),
    ("n-grid", 10**8, "4,096"),
    ("eval-n", 10**9, "200,000"),
]


@pytest.mark.parametrize(("flag", "value", "bound"), TRAIN_BOUNDS)
def test_an_absurd_training_size_is_refused_before_any_work(tmp_path, capsys, flag, value, bound):
    overrides = {flag: value, "model": "cgan"} if flag == "num-classes" else {flag: value}
    assert main(tiny_flags(tmp_path / "r", **overrides)) == 2
    assert_one_line_error(capsys, f"--{flag}: must be at most {bound}, got {value:,}")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("option", "largest"),
    [
        ("resolution", 1024),
        ("z_dim", 4096),
        ("width", 4096),
        ("num_classes", 10_000),
        ("d_steps", 100),
        ("n_grid", 4096),
        ("eval_n", 200_000),
    ],
)
def test_each_bound_is_inclusive(option, largest):
    extra = {"z_dim": 1} if option == "eval_n" else {}  # its noise bound is a product with z
    TrainConfig.from_dict({option: largest, **extra})
    with pytest.raises(GanforgeError, match=f"^--{option.replace('_', '-')}: must be at most"):
        TrainConfig.from_dict({option: largest + 1, **extra})


def test_a_progress_grid_too_large_for_one_picture_is_refused():
    """n_grid images of resolution^2 x channels are one allocation: the product is bounded."""
    TrainConfig.from_dict({"n_grid": 64, "resolution": 1024, "channels": 3})
    with pytest.raises(GanforgeError, match=r"^--n-grid: 4,096 images of 3 x 1024 x 1024 .*256"):
        TrainConfig.from_dict({"n_grid": 4096, "resolution": 1024, "channels": 3})
    with pytest.raises(GanforgeError, match=r"^--n-grid: 10,000 images"):  # a row per class
        TrainConfig.from_dict({"num_classes": 10_000, "resolution": 512, "channels": 3})


def test_networks_too_large_are_refused_before_any_allocation(tmp_path, capsys):
    """Each size in bounds, their product not: 3.3 billion parameters for mlp at width 4096."""
    assert main(tiny_flags(tmp_path / "r", width=4096)) == 2
    assert_one_line_error(capsys, "--width: the networks would have", "more than 500,000,000")
    assert not (tmp_path / "r").exists()
    with pytest.raises(GanforgeError, match="--resolution 1024"):
        build_model(TrainConfig(model="dcgan"), 1024, 3)


@pytest.mark.parametrize("model", ["mlp", "dcgan", "cgan", "pix2pix", "r3gan"])
def test_the_size_check_draws_nothing_from_the_rng(model):
    """It counts parameters on the meta device: the weights equal those of a plain build."""
    config = TrainConfig(model=model, width=4, z_dim=4, num_classes=3, spectral_norm=True)
    resolution = 32
    torch.manual_seed(0)
    checked = build_model(config, resolution, 1)
    torch.manual_seed(0)
    plain = _MODELS[model][0](config, resolution, 1)
    for a, b in zip(checked.networks.parameters(), plain.networks.parameters(), strict=True):
        assert torch.equal(a, b)


# ---- the seed --------------------------------------------------------------------------------


def test_the_seed_range():
    TrainConfig.from_dict({"seed": 2**63 - 1})
    for seed in (2**63, 2**70, -1):
        with pytest.raises(GanforgeError, match=r"^--seed: must be in 0 \.\. 2\^63-1"):
            TrainConfig.from_dict({"seed": seed})


def test_a_large_seed_trains_with_every_seeded_stream(tmp_path):
    """seed x 1,000,003 (the batch order's and --hflip's streams) passes 2^64: modulo it."""
    assert main([*tiny_flags(tmp_path / "r", seed=2**63 - 1), "--hflip"]) == 0


# ---- a path that is not UTF-8 ------------------------------------------------------------------


def test_a_data_folder_whose_name_is_not_utf8_is_refused_at_the_start(tmp_path, capsys):
    """config.json (UTF-8) cannot hold the name: it would crash at the end and on every resume."""
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    try:
        os.mkdir(folder)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    for i in range(20):
        pixels = np.full((8, 8), 10 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(os.fsdecode(os.path.join(folder, b"%d.png" % i)))
    assert main(tiny_flags(tmp_path / "r", data=os.fsdecode(folder), resolution=8)) == 2
    assert_one_line_error(capsys, "--data: b'", "caf\\xe9' is not valid UTF-8 text")
    assert not (tmp_path / "r").exists()


# ---- commands on a run -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["sample", "RUN", "--n", str(10**9)], ["--n: must be at most 1,000,000"]),
        (["sample", "RUN", "--n", "999999", "--out", "x.png"], ["--n: 999,999 images", "MiB"]),
        (["sample", "RUN", "--classes", "all", "--n", str(10**9)], ["--n: must be at most"]),
        (["sample", "RUN", "--seed", str(2**70)], ["--seed: must be in 0 .. 2^63-1"]),
        (["eval", "RUN", "--n", str(10**12)], ["--n: must be at most 200,000"]),
        (["eval", "RUN", "--seed", str(2**70)], ["--seed"]),
        (["compare", "RUN", "RUN", "--n", str(10**12)], ["--n: must be at most 200,000"]),
        (["latent", "interp", "RUN", "--from", "1", "--to", "2", "--steps", str(10**8)],
         ["--steps: must be at most 1,000"]),
        (["latent", "walk", "RUN", "--keys", str(10**6)], ["--keys x --frames: must be at most"]),
        (["latent", "walk", "RUN", "--seed", str(2**70)], ["--seed"]),
    ],
)
def test_an_absurd_size_on_a_run_is_refused_before_any_work(
    trained_run, tmp_path, capsys, tree_snapshot, monkeypatch, args, words
):
    before = tree_snapshot(trained_run.path)
    monkeypatch.setattr(Run, "load", lambda *a, **k: pytest.fail("loaded the generator first"))
    args = [str(trained_run.path) if a == "RUN" else a for a in args]
    assert main(args) == 2
    assert_one_line_error(capsys, *words)
    assert tree_snapshot(trained_run.path) == before
    assert list(tmp_path.iterdir()) == []  # no samples.png, walk.gif, compare/


@pytest.fixture
def edited_run(trained_run, tmp_path):
    """`edited_run(**values)`: a copy of the shared run with values written into config.json."""

    def edit(**values):
        path = tmp_path / "edited"
        shutil.copytree(trained_run.path, path)
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, **values}))
        return path

    return edit


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"z_dim": 10**8}, ["--z-dim: must be at most 4,096"]),
        ({"resolution": 100_000}, ["--resolution: must be at most 1,024"]),
        ({"width": 10**6}, ["--width: must be at most 4,096"]),
        ({"n_grid": 10**8}, ["--n-grid: must be at most 4,096"]),
        ({"eval_n": 10**9}, ["--eval-n: must be at most 200,000"]),
        ({"d_steps": 10**9}, ["--d-steps: must be at most 100"]),
        ({"seed": 2**70}, ["--seed: must be in 0 .. 2^63-1"]),
        ({"width": 4096}, ["--width: the networks would have", "500,000,000"]),
    ],
)
@pytest.mark.parametrize("command", ["sample", "eval", "resume", "latent"])
def test_a_hand_edited_config_json_meets_the_same_bounds(
    edited_run, capsys, tree_snapshot, values, words, command
):
    path = edited_run(**values)
    before = tree_snapshot(path)
    args = {
        "sample": ["sample", str(path), "--n", "4"],
        "eval": ["eval", str(path), "--n", "10"],
        "resume": ["train", "--resume", str(path), "--steps", "12"],
        "latent": ["latent", "interp", str(path), "--from", "0", "--to", "1"],
    }[command]
    assert main(args) == 2
    assert_one_line_error(capsys, "config.json", *words)
    assert tree_snapshot(path) == before


def test_a_large_class_grid_is_drawn_in_batches_like_a_small_one(monkeypatch):
    """Above CLASS_GRID_BATCH images the grid is sampled in batches: the same images."""
    config = TrainConfig(model="cgan", width=4, z_dim=4, num_classes=5)
    torch.manual_seed(0)
    family = build_model(config, 28, 1)
    network = family.networks["generator"]
    whole, labels = class_rows(family, network, per_class=6, seed=1)
    monkeypatch.setattr("ganforge.sampling.CLASS_GRID_BATCH", 4)
    batched, labels_again = class_rows(family, network, per_class=6, seed=1)
    assert whole.shape == (30, 28, 28, 1)
    assert np.array_equal(whole, batched) and torch.equal(labels, labels_again)
    assert not np.array_equal(whole[:6], whole[6:12])  # rows differ by class

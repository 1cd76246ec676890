"""Runs for the app's tests: a DCGAN, a class-conditional GAN and a pix2pix translator, trained
for a few steps into one RUNS_DIR, beside two runs the app must explain instead of showing:
one without a checkpoint and one whose config.json is not JSON."""

from __future__ import annotations

import shutil

import pytest

import ganforge

NOISE_RUN = {
    "data": "digits",
    "width": 8,
    "z_dim": 8,
    "batch_size": 16,
    "steps": 30,
    "log_every": 10,
    "checkpoint_every": 1000,
    "sample_every": 1000,
    "n_grid": 16,
    "progress": False,
}
TRANSLATOR_RUN = {
    **NOISE_RUN,
    "model": "pix2pix",
    "data": "mnist-mini-edges",
    "resolution": 32,
    "width": 4,
    "batch_size": 8,
    "steps": 20,
    "n_grid": 4,
}
NO_CHECKPOINT = "problems/no-checkpoint"
BROKEN = "problems/broken-config"


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory):
    """RUNS_DIR holding cgan/, dcgan/, pix2pix/ and problems/{no-checkpoint,broken-config}/."""
    root = tmp_path_factory.mktemp("app-runs")
    ganforge.train(**NOISE_RUN, model="dcgan", out=str(root / "dcgan"))
    ganforge.train(**NOISE_RUN, model="cgan", out=str(root / "cgan"))
    ganforge.train(**TRANSLATOR_RUN, out=str(root / "pix2pix"))
    (root / NO_CHECKPOINT).mkdir(parents=True)
    shutil.copy(root / "dcgan" / "config.json", root / NO_CHECKPOINT / "config.json")
    (root / BROKEN).mkdir(parents=True)
    (root / BROKEN / "config.json").write_text("{this is not JSON", encoding="utf-8")
    return root

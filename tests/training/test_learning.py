"""A real (short) GAN training run learns: D(G(z)) moves and samples approach real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganforge
from ganforge.data import load_dataset
from ganforge.models import build_model
from ganforge.sampling import generate


def mean_nearest_neighbour_distance(samples: np.ndarray, real: torch.Tensor) -> float:
    """Mean L2 distance (in 0-255 pixel units) from each sample to its nearest real image."""
    flat = torch.from_numpy(samples).float().reshape(len(samples), -1)
    return torch.cdist(flat, real).min(dim=1).values.mean().item()


@pytest.mark.slow
def test_300_step_mlp_gan_on_digits_learns(tmp_path):
    run = ganforge.train(
        model="mlp",
        data="digits",
        width=32,
        z_dim=32,
        batch_size=64,
        steps=300,
        log_every=25,
        seed=0,
        progress=False,
        n_grid=16,
        out=str(tmp_path / "mlp"),
    )
    records = run.metrics()
    assert [r["step"] for r in records] == list(range(25, 301, 25))
    first, last = records[0], records[-1]
    # D(G(z)) moves markedly as D learns to reject the fakes and G chases it
    assert abs(first["d_fake"] - last["d_fake"]) > 0.03
    assert abs(first["d_fake_g"] - last["d_fake_g"]) > 0.05
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in records)

    dataset = load_dataset("digits")
    real = dataset.images.permute(0, 2, 3, 1).reshape(len(dataset), -1).float()

    # the untrained generator, exactly as the trainer initialised it at step 0
    torch.manual_seed(run.config.seed)
    initial = build_model(run.config, run.config.resolution, run.config.channels)
    untrained = generate(initial, initial.networks["generator"], 128, seed=1)
    trained = run.sample(128, seed=1)
    assert trained.shape == untrained.shape == (128, 28, 28, 1)

    d_untrained = mean_nearest_neighbour_distance(untrained, real)
    d_trained = mean_nearest_neighbour_distance(trained, real)
    d_blank = mean_nearest_neighbour_distance(np.zeros_like(trained), real)
    assert d_trained < 0.6 * d_untrained, (d_trained, d_untrained)
    # more than a black background: closer to real digits than an empty image is
    assert d_trained < d_blank, (d_trained, d_blank)
    # and the samples are not all the same picture
    assert trained.reshape(128, -1).std(axis=0).mean() > 2

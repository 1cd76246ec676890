"""L1, PSNR and SSIM of translations against targets: known values, per-image batching, and
SSIM against a direct numpy transcription of Wang et al. (2004)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.metrics.paired import MAX_PSNR, l1_error, paired_scores, psnr, ssim


def reference_ssim(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
    """Wang et al. 2004, eqs. (14)-(16) with a Gaussian window (11x11, sigma 1.5), written out
    window by window: the mean SSIM over every position where the window fits, per channel."""
    size, sigma = 11, 1.5
    grid = np.arange(size) - (size - 1) / 2
    weights = np.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for xc, yc in zip(x, y):  # channels
        for i in range(xc.shape[0] - size + 1):
            for j in range(xc.shape[1] - size + 1):
                a, b = xc[i : i + size, j : j + size], yc[i : i + size, j : j + size]
                mu_a, mu_b = (weights * a).sum(), (weights * b).sum()
                var_a = (weights * (a - mu_a) ** 2).sum()
                var_b = (weights * (b - mu_b) ** 2).sum()
                cov = (weights * (a - mu_a) * (b - mu_b)).sum()
                values.append(
                    ((2 * mu_a * mu_b + c1) * (2 * cov + c2))
                    / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
                )
    return float(np.mean(values))


def random_images(n: int, channels: int = 1, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def test_ssim_of_an_image_with_itself_is_one():
    images = random_images(3, channels=3, size=20)
    assert torch.allclose(ssim(images, images), torch.ones(3), atol=1e-6)


def test_ssim_falls_as_noise_grows():
    generator = torch.Generator().manual_seed(1)
    clean = torch.nn.functional.avg_pool2d(random_images(4, size=64), 3, 1, 1)
    noise = torch.randn(clean.shape, generator=generator)
    scores = [ssim(clean, (clean + level * noise).clamp(0, 1)).mean() for level in (0.02, 0.1, 0.3)]
    assert 1 > scores[0] > scores[1] > scores[2] > 0


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_the_reference_formula(channels):
    x = random_images(2, channels, size=18, seed=2)
    y = (0.6 * x + 0.4 * random_images(2, channels, size=18, seed=3)).clamp(0, 1)
    ours = ssim(x, y)
    for k in range(2):
        expected = reference_ssim(x[k].double().numpy(), y[k].double().numpy())
        assert ours[k].item() == pytest.approx(expected, abs=1e-6)


def test_ssim_is_per_image_and_needs_the_window_to_fit():
    x, y = random_images(6, seed=4), random_images(6, seed=5)
    assert torch.allclose(ssim(x, y), torch.cat([ssim(x[:2], y[:2]), ssim(x[2:], y[2:])]))
    with pytest.raises(ValueError, match="11x11"):
        ssim(x[..., :10, :10], y[..., :10, :10])
    with pytest.raises(ValueError, match="one NCHW shape"):
        ssim(x, y[:3])


def test_psnr_and_l1_known_values():
    target = torch.full((2, 1, 8, 8), 0.5)
    output = target.clone()
    output[0] += 0.1  # MSE 0.01: 20 dB
    assert psnr(output, target)[0].item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(output, target)[1].item() == MAX_PSNR  # identical: capped, finite
    assert l1_error(output, target).tolist() == pytest.approx([0.1, 0.0], abs=1e-6)
    half = torch.zeros(1, 3, 4, 4)
    half[..., :2] = 1.0  # half the pixels off by 1: MSE 0.5
    assert psnr(half, torch.zeros_like(half)).item() == pytest.approx(10 * math.log10(2), abs=1e-5)


def test_paired_scores_keys():
    x, y = random_images(2, size=12), random_images(2, size=12, seed=9)
    scores = paired_scores(x, y)
    assert set(scores) == {"l1", "psnr", "ssim"}
    assert all(values.shape == (2,) for values in scores.values())

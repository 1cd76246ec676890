"""Fréchet distance: the matrix square root and trace against scipy, the FID formula against
pytorch-fid's, closed forms, input kinds, and FID on real digits under growing corruption."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.metrics import (
    GaussianStats,
    extract_features,
    frechet_distance,
    gaussian_stats,
    sqrtm_psd,
)
from ganforge.metrics.frechet import trace_sqrt_product


def random_cov(rng, dim: int, rank: int | None = None) -> np.ndarray:
    rank = rank or dim
    a = rng.normal(size=(dim, rank))
    return a @ a.T / rank


def scipy_sqrtm(matrix: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # scipy warns on singular input
        warnings.simplefilter("ignore")
        return scipy.linalg.sqrtm(matrix)


def rel_err(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def pytorch_fid_formula(x: np.ndarray, y: np.ndarray) -> float:
    """calculate_frechet_distance of pytorch-fid, with its statistics (mean, np.cov)."""
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    sigma1, sigma2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    diff = mu1 - mu2
    covmean = scipy_sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy_sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


# -- matrix functions --------------------------------------------------------------------------


@pytest.mark.parametrize(("dim", "rank"), [(1, 1), (2, 2), (7, 7), (32, 32), (96, 96), (40, 9)])
def test_sqrtm_psd_matches_scipy(dim, rank):
    rng = np.random.default_rng(dim * 100 + rank)
    cov = random_cov(rng, dim, rank)
    root = sqrtm_psd(cov)
    reference = scipy_sqrtm(cov)
    assert rel_err(root, reference.real) < 1e-6
    assert root.dtype == np.float64
    np.testing.assert_allclose(root, root.T, atol=1e-12)  # symmetric
    assert np.linalg.eigvalsh(root).min() > -1e-7  # PSD
    assert rel_err(root @ root, cov) < 1e-10


def test_sqrtm_psd_known_matrix_and_clipped_rounding_noise():
    # [[2, 1], [1, 2]] has eigenvalues 1 and 3 along (1,-1) and (1,1)
    matrix = np.array([[2.0, 1.0], [1.0, 2.0]])
    s1, s3 = 1.0, np.sqrt(3.0)
    expected = np.array([[s3 + s1, s3 - s1], [s3 - s1, s3 + s1]]) / 2
    np.testing.assert_allclose(sqrtm_psd(matrix), expected, rtol=1e-12)
    # a PSD matrix with a tiny negative eigenvalue from rounding: real, finite, no NaN
    v = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0]
    noisy = (v * np.array([4.0, 1.0, 0.0, -1e-15])) @ v.T
    root = sqrtm_psd(noisy)
    assert np.isfinite(root).all()
    assert rel_err(root @ root, noisy) < 1e-8


@pytest.mark.parametrize(("dim", "rank_a"), [(1, 1), (3, 3), (16, 16), (64, 64), (24, 5)])
def test_trace_sqrt_product_matches_scipy(dim, rank_a):
    rng = np.random.default_rng(dim + 7 * rank_a)
    sa, sb = random_cov(rng, dim, rank_a), random_cov(rng, dim)
    expected = np.trace(scipy_sqrtm(sa @ sb)).real
    assert trace_sqrt_product(sa, sb) == pytest.approx(expected, rel=1e-6)
    # symmetric in its arguments, as Tr((AB)^1/2) = Tr((BA)^1/2)
    assert trace_sqrt_product(sb, sa) == pytest.approx(expected, rel=1e-6)


def test_trace_sqrt_product_of_a_matrix_with_itself_is_its_trace():
    cov = random_cov(np.random.default_rng(3), 10)
    assert trace_sqrt_product(cov, cov) == pytest.approx(np.trace(cov), rel=1e-10)


# -- the distance ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "dim", "shift"), [(200, 4, 0.0), (300, 16, 0.5), (120, 48, 2.0)])
def test_frechet_distance_matches_pytorch_fid_formula(n, dim, shift):
    rng = np.random.default_rng(n + dim)
    x = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim))
    y = rng.normal(loc=shift, scale=1.5, size=(n + 17, dim))
    assert frechet_distance(x, y) == pytest.approx(pytorch_fid_formula(x, y), rel=1e-6)


def test_frechet_distance_of_identical_stats_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 32))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    stats = gaussian_stats(x)
    assert frechet_distance(stats, stats) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(x, x.copy()[::-1]) == pytest.approx(0.0, abs=1e-8)  # order-free


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(1)
    dim = 6
    mu_a, mu_b = rng.normal(size=dim), rng.normal(size=dim)
    var_a, var_b = rng.uniform(0.1, 4, size=dim), rng.uniform(0.1, 4, size=dim)
    expected = np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2) + np.sum((mu_a - mu_b) ** 2)
    a = GaussianStats(mu_a, np.diag(var_a), 100)
    b = GaussianStats(mu_b, np.diag(var_b), 100)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    # a pure translation: exactly the squared distance of the means
    assert frechet_distance(a, GaussianStats(mu_a + 3.0, np.diag(var_a), 7)) == pytest.approx(
        9.0 * dim, rel=1e-10
    )


def test_frechet_distance_closed_form_for_one_dimensional_features():
    # in 1-D the distance is (mu_a - mu_b)^2 + (s_a - s_b)^2 with the sample std (ddof=1)
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, size=(400, 1)), rng.normal(2, 3, size=(300, 1))
    expected = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def test_gaussian_stats_are_mean_and_unbiased_covariance():
    x = np.random.default_rng(4).normal(size=(50, 3))
    stats = gaussian_stats(torch.from_numpy(x).float())
    assert stats.n == 50
    np.testing.assert_allclose(stats.mu, x.mean(axis=0), rtol=1e-6)
    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(stats.sigma, centred.T @ centred / 49, rtol=1e-5)
    assert stats.mu.dtype == stats.sigma.dtype == np.float64


def test_frechet_distance_accepts_numpy_torch_and_stats_alike():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = rng.normal(0.3, 1.2, size=(250, 8)).astype(np.float32)
    expected = frechet_distance(x, y)
    assert expected > 0.1
    assert frechet_distance(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected)
    assert frechet_distance(torch.from_numpy(x), y) == pytest.approx(expected)
    assert frechet_distance(gaussian_stats(x), torch.from_numpy(y)) == pytest.approx(expected)
    with_grad = torch.from_numpy(x).requires_grad_(True)
    assert frechet_distance(with_grad, y) == pytest.approx(expected)


def test_frechet_distance_is_never_negative_on_a_singular_covariance():
    # 3 points in 10-D: the covariance has rank 2; the usual scipy route produces complex parts
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 10))
    value = frechet_distance(x, x + 1e-9 * rng.normal(size=x.shape))
    assert 0.0 <= value < 1e-6


def test_frechet_distance_errors():
    rng = np.random.default_rng(7)
    with pytest.raises(GanforgeError, match="dimensions differ"):
        frechet_distance(rng.normal(size=(20, 4)), rng.normal(size=(20, 5)))
    with pytest.raises(GanforgeError, match="2-D"):
        frechet_distance(rng.normal(size=20), rng.normal(size=20))
    with pytest.raises(GanforgeError, match="at least 2"):
        frechet_distance(rng.normal(size=(1, 4)), rng.normal(size=(20, 4)))


# -- FID on real digits ------------------------------------------------------------------------


def add_noise(images: torch.Tensor, sigma: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    noisy = images.float() + sigma * torch.randn(images.shape, generator=g)
    return noisy.round().clamp(0, 255).to(torch.uint8)


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(images.float(), (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return x.round().clamp(0, 255).to(torch.uint8)


N_CORRUPT = 500


def test_fid_of_real_split_is_near_zero_and_far_below_noisy(digits_setup):
    data, extractor, features, half_a, half_b = digits_setup
    split = frechet_distance(features[half_a], features[half_b])
    # tiny next to the spread of the features themselves
    assert split < 0.01 * np.trace(gaussian_stats(features).sigma)
    # at equal N, real vs real is far below real vs noisy digits
    subset = half_b[:N_CORRUPT]
    clean = frechet_distance(features[half_a], features[subset])
    noisy = extract_features(extractor, add_noise(data.images[subset], 64)).features
    assert clean < 0.1 * frechet_distance(features[half_a], noisy)
    # FID's small-sample bias: the same kind of data measured on fewer samples scores higher
    assert split < clean


@pytest.mark.parametrize(
    ("corrupt", "strengths"), [(add_noise, [32, 64, 96, 128]), (blur, [0.75, 1.25, 1.75, 2.5])]
)
def test_fid_grows_with_corruption_strength(digits_setup, corrupt, strengths):
    data, extractor, features, half_a, half_b = digits_setup
    subset = half_b[:N_CORRUPT]
    values = [frechet_distance(features[half_a], features[subset])]
    for strength in strengths:
        corrupted = extract_features(extractor, corrupt(data.images[subset], strength)).features
        values.append(frechet_distance(features[half_a], corrupted))
    assert all(later > 1.3 * earlier for earlier, later in zip(values, values[1:])), values

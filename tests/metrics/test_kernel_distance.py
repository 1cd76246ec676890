"""KID: the unbiased MMD^2 estimator against a brute-force double loop, unbiasedness (a mean
near zero that can go negative), separation of different distributions, subsets and seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.kernel_distance import (
    KIDResult,
    kid_of_features,
    mmd2_unbiased,
    polynomial_kernel,
)


def kernel_loop(a: np.ndarray, b: np.ndarray) -> float:
    d = len(a)
    return (sum(float(a[i]) * float(b[i]) for i in range(d)) / d + 1.0) ** 3


def mmd2_brute_force(x: np.ndarray, y: np.ndarray) -> float:
    m, n = len(x), len(y)
    xx = sum(kernel_loop(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(kernel_loop(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    xy = sum(kernel_loop(x[i], y[j]) for i in range(m) for j in range(n))
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


def test_polynomial_kernel_matches_its_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    k = polynomial_kernel(x, y)
    assert k.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            assert k[i, j] == pytest.approx(kernel_loop(x[i], y[j]), rel=1e-12)


@pytest.mark.parametrize(("m", "n", "d"), [(2, 2, 1), (5, 7, 3), (9, 4, 6)])
def test_mmd2_unbiased_matches_brute_force(m, n, d):
    rng = np.random.default_rng(m * n * d)
    x, y = rng.normal(size=(m, d)), rng.normal(0.5, 2.0, size=(n, d))
    assert mmd2_unbiased(x, y) == pytest.approx(mmd2_brute_force(x, y), rel=1e-10, abs=1e-12)


def test_mmd2_unbiased_is_unbiased_mean_zero_and_sometimes_negative():
    # many small same-distribution pairs: the average is within noise of 0 and values fall on
    # both sides of it; the biased estimator (diagonal terms included) is always > 0
    values = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        values.append(mmd2_unbiased(rng.normal(size=(30, 4)), rng.normal(size=(30, 4))))
    values = np.array(values)
    standard_error = values.std() / np.sqrt(len(values))
    assert abs(values.mean()) < 3 * standard_error
    assert (values < 0).sum() > 40 and (values > 0).sum() > 40


def test_kid_same_distribution_near_zero_different_distributions_large():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16))
    shifted = rng.normal(0.3, 1.0, size=(1000, 16))
    same = kid_of_features(x, y, subsets=50, subset_size=200)
    different = kid_of_features(x, shifted, subsets=50, subset_size=200)
    assert isinstance(same, KIDResult)
    assert different.mean > 0.1
    assert abs(same.mean) < 0.05 * different.mean
    assert different.mean > 3 * different.std  # well separated from zero across subsets
    assert same.std > 0  # distinct random subsets give distinct estimates


def test_kid_can_be_negative_for_same_distribution():
    rng = np.random.default_rng(1)
    means = []
    for seed in range(10):
        x, y = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
        means.append(kid_of_features(x, y, subsets=5, subset_size=40, seed=seed).mean)
    assert min(means) < 0 < max(means)


def test_kid_is_seeded_and_subsets_are_random():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 8)), rng.normal(0.2, 1.0, size=(300, 8))
    first = kid_of_features(x, y, subsets=20, subset_size=50, seed=3)
    assert kid_of_features(x, y, subsets=20, subset_size=50, seed=3) == first
    assert kid_of_features(x, y, subsets=20, subset_size=50, seed=4).mean != first.mean
    assert (first.subsets, first.subset_size) == (20, 50)


def test_kid_with_full_subsets_is_the_full_estimate():
    # subset_size >= both set sizes: every subset is the whole set, in some order
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 5)), rng.normal(0.5, 1.0, size=(30, 5))
    result = kid_of_features(x, y, subsets=4, subset_size=1000)
    assert result.subset_size == 30  # clipped to the smaller set
    same_size = kid_of_features(x[:30], y, subsets=4, subset_size=1000)
    assert same_size.std == pytest.approx(0.0, abs=1e-12)
    assert same_size.mean == pytest.approx(mmd2_unbiased(x[:30], y), rel=1e-10)


def test_kid_accepts_numpy_and_torch_alike():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(100, 6)).astype(np.float32), rng.normal(size=(80, 6)).astype(np.float32)
    expected = kid_of_features(x, y, subsets=10, subset_size=50)
    got = kid_of_features(torch.from_numpy(x), torch.from_numpy(y), subsets=10, subset_size=50)
    assert got.mean == pytest.approx(expected.mean, rel=1e-12)
    assert got.std == pytest.approx(expected.std, rel=1e-12)


def test_kid_errors():
    rng = np.random.default_rng(5)
    with pytest.raises(GanforgeError, match="at least 2"):
        kid_of_features(rng.normal(size=(1, 4)), rng.normal(size=(10, 4)))
    with pytest.raises(GanforgeError, match="2-D"):
        kid_of_features(rng.normal(size=10), rng.normal(size=(10, 4)))

"""Kernel Inception Distance (Bińkowski et al. 2018): the squared MMD between two feature sets
under the cubic polynomial kernel k(x, y) = (x·y / d + 1)^3.

Unlike FID, the estimator here is unbiased, so KID compares fairly across sample sizes; it is
averaged over random subsets (the usual 100 subsets of up to 1,000) and reported with the
standard deviation across subsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.metrics.frechet import as_features


@dataclass(frozen=True)
class KIDResult:
    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate: kernel means without the diagonal terms within each set."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def kid_of_features(
    real_features, fake_features, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> KIDResult:
    """KID between features (N, D) of two sets; subsets drawn without replacement, seeded."""
    real = as_features(real_features, "real features")
    fake = as_features(fake_features, "fake features")
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise GanforgeError(
            f"KID needs at least 2 samples per set, got {len(real)} and {len(fake)}"
        )
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            mmd2_unbiased(
                real[rng.choice(len(real), size, replace=False)],
                fake[rng.choice(len(fake), size, replace=False)],
            )
            for _ in range(subsets)
        ]
    )
    return KIDResult(float(values.mean()), float(values.std()), subsets, size)

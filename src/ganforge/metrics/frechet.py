"""The Fréchet distance between two Gaussians fitted to features (FID, Heusel et al. 2017).

    FD = ||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))

The usual code calls scipy.linalg.sqrtm on the non-symmetric product S_a S_b: a Schur
decomposition in complex arithmetic that can return imaginary parts and fails on singular
covariances. S_a S_b is similar to the symmetric PSD matrix R S_b R with R = S_a^(1/2), so the
trace of its square root is the sum of the square roots of that matrix's eigenvalues: two
symmetric eigendecompositions in float64, real by construction, and faster.

FID is biased upwards at small sample sizes (Chong & Forsyth 2020): compare values only at the
same N and with the same feature extractor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganforge.errors import GanforgeError


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance (float64) of `n` feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


def as_features(features, what: str = "features") -> np.ndarray:
    """A 2-D float64 numpy array from numpy or torch features (N, D)."""
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise GanforgeError(f"{what}: expected a 2-D array (N, D), got shape {array.shape}")
    return array


def gaussian_stats(features) -> GaussianStats:
    """Mean and unbiased covariance (ddof=1, as pytorch-fid) of features (N, D), N >= 2."""
    array = as_features(features)
    if len(array) < 2:
        raise GanforgeError(f"features: need at least 2 vectors for a covariance, got {len(array)}")
    # np.cov squeezes the (1, 1) covariance of 1-D features to a scalar: keep it a matrix
    sigma = np.atleast_2d(np.cov(array, rowvar=False))
    return GaussianStats(array.mean(axis=0), sigma, len(array))


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (float64).

    Eigenvalues below zero are rounding noise of a PSD matrix and are clipped to zero.
    """
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """Tr((S_a S_b)^(1/2)) for PSD S_a, S_b, via the eigenvalues of S_a^(1/2) S_b S_a^(1/2)."""
    root_a = sqrtm_psd(np.asarray(sigma_a, dtype=np.float64))
    middle = root_a @ np.asarray(sigma_b, dtype=np.float64) @ root_a
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(values, 0, None)).sum())


def frechet_distance(a, b) -> float:
    """Fréchet distance between features (N, D) arrays/tensors or GaussianStats a and b."""
    stats_a = a if isinstance(a, GaussianStats) else gaussian_stats(a)
    stats_b = b if isinstance(b, GaussianStats) else gaussian_stats(b)
    if stats_a.mu.shape != stats_b.mu.shape:
        raise GanforgeError(
            f"features: dimensions differ ({stats_a.mu.shape[0]} vs {stats_b.mu.shape[0]})"
        )
    diff = stats_a.mu - stats_b.mu
    value = (
        diff @ diff
        + np.trace(stats_a.sigma)
        + np.trace(stats_b.sigma)
        - 2 * trace_sqrt_product(stats_a.sigma, stats_b.sigma)
    )
    return max(float(value), 0.0)

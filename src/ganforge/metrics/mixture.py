"""Mode scores of samples from a Gaussian mixture (ring8, grid25): how many modes a generator
captures, how many of its samples are good, and how unevenly it spreads them, as in PacGAN's
Table 1 (Lin et al. 2018), after VEEGAN (Srivastava et al. 2017) and unrolled GANs (Metz et
al. 2017).

Protocol, for N samples and a mixture of M modes (centres) with a common std:
- each sample is assigned to its nearest mode centre (Euclidean distance);
- it is high quality when that distance is at most `quality_stds` x std (3 by default);
- the histogram counts the high-quality samples of each mode;
- a mode is captured when it holds at least `min_share` (1/5) of its fair share of the samples:
  count >= min_share x N / M (up to rounding), and count > 0;
- high_quality is the share of the N samples that are high quality;
- reverse_kl is KL(p_fake || p_real) in nats, where p_fake = histogram / histogram.sum() and
  p_real is uniform (1/M): the sum over modes with p_fake > 0 of p_fake x log(p_fake x M).
  It is 0 when the good samples are spread evenly and log(M / k) when they sit evenly on k
  modes. When no sample is high quality, p_fake counts every sample at its nearest mode
  instead, so the score stays a finite number (a JSON table has no inf) that still tells
  one collapsed mode (log M) from a spread-out blur (near 0).
A non-finite sample (nan or inf, from a diverged generator) is never high quality and is
assigned to no mode: it counts in N only. Samples that are all non-finite are an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_ROWS = 65536  # samples whose distances to every mode are computed at once


@dataclass(frozen=True)
class MixtureScores:
    modes_captured: int
    num_modes: int
    high_quality: float  # share of samples within quality_stds x std of their nearest mode
    reverse_kl: float  # KL(p_fake || p_real) between histograms over modes, in nats
    histogram: tuple[int, ...]  # the high-quality samples of each mode


def mixture_scores(
    samples: np.ndarray,
    modes: np.ndarray,
    std: float,
    *,
    quality_stds: float = 3.0,
    min_share: float = 0.2,
) -> MixtureScores:
    """Scores of `samples` (N, D) against a mixture of `modes` (M, D) centres with a common
    `std`, by the protocol in this module's docstring."""
    samples, modes = _checked(samples, modes, std, quality_stds, min_share)
    nearest, distance = _nearest_modes(samples, modes)
    assigned = nearest >= 0
    if not assigned.any():
        raise ValueError("every sample is non-finite (nan or inf): nothing to score")
    high = assigned & (distance <= quality_stds * std)
    num_modes = len(modes)
    histogram = np.bincount(nearest[high], minlength=num_modes)
    fair_share = min_share * len(samples) / num_modes
    captured = (histogram > 0) & (histogram >= fair_share * (1 - 1e-12))
    spread = histogram if high.any() else np.bincount(nearest[assigned], minlength=num_modes)
    return MixtureScores(
        modes_captured=int(captured.sum()),
        num_modes=num_modes,
        high_quality=float(high.sum() / len(samples)),
        reverse_kl=_reverse_kl(spread),
        histogram=tuple(int(count) for count in histogram),
    )


def _checked(samples, modes, std, quality_stds, min_share) -> tuple[np.ndarray, np.ndarray]:
    samples = np.asarray(samples, dtype=np.float64)
    modes = np.asarray(modes, dtype=np.float64)
    if samples.ndim != 2 or modes.ndim != 2:
        raise ValueError(
            f"samples and modes must be (N, D) and (M, D), got {samples.shape} and {modes.shape}"
        )
    if samples.shape[1] != modes.shape[1]:
        raise ValueError(f"samples have {samples.shape[1]} dimensions but modes {modes.shape[1]}")
    if len(samples) == 0 or len(modes) == 0:
        raise ValueError(
            f"need at least one sample and one mode, got {len(samples)} and {len(modes)}"
        )
    if not np.isfinite(modes).all():
        raise ValueError("mode centres must be finite")
    for name, value in (("std", std), ("quality_stds", quality_stds), ("min_share", min_share)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    return samples, modes


def _nearest_modes(samples: np.ndarray, modes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each sample's nearest mode (-1 for a non-finite sample) and its distance to it
    (inf for a non-finite sample), CHUNK_ROWS samples at a time."""
    nearest = np.full(len(samples), -1, dtype=np.int64)
    distance = np.full(len(samples), np.inf)
    mode_norms = (modes**2).sum(axis=1)
    for start in range(0, len(samples), CHUNK_ROWS):
        chunk = samples[start : start + CHUNK_ROWS]
        finite = np.flatnonzero(np.isfinite(chunk).all(axis=1))
        points = chunk[finite]
        # |x - m|^2 up to |x|^2, the same for every mode: enough to pick the nearest
        squared = mode_norms[None, :] - 2 * points @ modes.T
        picks = squared.argmin(axis=1)
        nearest[start + finite] = picks
        # the distance itself from the difference, exact at the quality threshold
        distance[start + finite] = np.linalg.norm(points - modes[picks], axis=1)
    return nearest, distance


def _reverse_kl(histogram: np.ndarray) -> float:
    """KL(p_fake || uniform) in nats for a histogram over modes (not all zero)."""
    p_fake = histogram[histogram > 0] / histogram.sum()
    return max(0.0, float(np.sum(p_fake * np.log(p_fake * len(histogram)))))  # not -1e-17

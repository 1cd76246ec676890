"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Both approximate each set's support by balls around its points whose radius is the distance to
the k-th nearest neighbour within the same set. Precision: the share of fakes inside the real
support (are samples realistic?); recall: the share of reals inside the fake support (is the
data's variety covered?). A mode-collapsed generator has high precision and low recall.
Density counts how many real balls hold each fake (robust to real outliers); coverage is the
share of real balls holding at least one fake.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.frechet import as_features

ROW_BLOCK = 2048  # rows of a distance matrix computed at once (memory: ROW_BLOCK x N floats)


@dataclass(frozen=True)
class PrecisionRecall:
    precision: float
    recall: float
    k: int


@dataclass(frozen=True)
class DensityCoverage:
    density: float
    coverage: float
    k: int


def _tensor(features, what: str) -> torch.Tensor:
    return torch.from_numpy(as_features(features, what))


def _blocks(x: torch.Tensor, y: torch.Tensor):
    """Yield (row offset, distances of a block of x's rows to all of y)."""
    for start in range(0, len(x), ROW_BLOCK):
        yield start, torch.cdist(x[start : start + ROW_BLOCK], y)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point of the same set."""
    if len(x) <= k:
        raise GanforgeError(f"k={k} nearest neighbours need more than {k} samples, got {len(x)}")
    radii = torch.empty(len(x), dtype=x.dtype)
    for start, dist in _blocks(x, x):
        # the smallest distance is the point itself (0), so the k-th neighbour is index k
        radii[start : start + len(dist)] = dist.kthvalue(k + 1, dim=1).values
    return radii


def _inside_counts(
    points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor
) -> torch.Tensor:
    """For each point, how many balls (centres, radii) contain it."""
    counts = torch.empty(len(points), dtype=torch.int64)
    for start, dist in _blocks(points, centres):
        counts[start : start + len(dist)] = (dist <= radii[None, :]).sum(dim=1)
    return counts


def precision_recall_of_features(real_features, fake_features, k: int = 3) -> PrecisionRecall:
    real, fake = _tensor(real_features, "real features"), _tensor(fake_features, "fake features")
    precision = (_inside_counts(fake, real, knn_radii(real, k)) > 0).double().mean()
    recall = (_inside_counts(real, fake, knn_radii(fake, k)) > 0).double().mean()
    return PrecisionRecall(float(precision), float(recall), k)


def density_coverage_of_features(real_features, fake_features, k: int = 5) -> DensityCoverage:
    real, fake = _tensor(real_features, "real features"), _tensor(fake_features, "fake features")
    radii = knn_radii(real, k)
    density = _inside_counts(fake, real, radii).double().sum() / (k * len(fake))
    # coverage: real ball i holds a fake when its nearest fake is within its radius
    nearest_fake = torch.empty(len(real), dtype=real.dtype)
    for start, dist in _blocks(real, fake):
        nearest_fake[start : start + len(dist)] = dist.min(dim=1).values
    coverage = (nearest_fake <= radii).double().mean()
    return DensityCoverage(float(density), float(coverage), k)

"""Precision/recall and density/coverage: k-NN radii and the four scores against brute force,
their expected values on same-distribution features, and mode collapse on real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import extract_features, prdc
from ganforge.metrics.prdc import (
    density_coverage_of_features,
    knn_radii,
    precision_recall_of_features,
)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def radii_brute_force(x: np.ndarray, k: int) -> np.ndarray:
    out = []
    for i in range(len(x)):
        others = [np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i]
        out.append(sorted(others)[k - 1])
    return np.array(out)


def prdc_brute_force(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> dict:
    d_rf = distances(real, fake)  # (R, F)
    r_real_pr, r_fake_pr = radii_brute_force(real, k_pr), radii_brute_force(fake, k_pr)
    r_real_dc = radii_brute_force(real, k_dc)
    return {
        "precision": np.mean([(d_rf[:, j] <= r_real_pr).any() for j in range(len(fake))]),
        "recall": np.mean([(d_rf[i, :] <= r_fake_pr).any() for i in range(len(real))]),
        "density": (d_rf <= r_real_dc[:, None]).sum() / (k_dc * len(fake)),
        "coverage": np.mean([d_rf[i].min() <= r_real_dc[i] for i in range(len(real))]),
    }


@pytest.mark.parametrize(("n", "d", "k"), [(6, 2, 1), (30, 4, 3), (45, 7, 5)])
def test_knn_radii_match_brute_force(n, d, k):
    x = np.random.default_rng(n).normal(size=(n, d))
    got = knn_radii(torch.from_numpy(x), k).numpy()
    np.testing.assert_allclose(got, radii_brute_force(x, k), rtol=1e-9)


def test_knn_radii_with_duplicates_count_the_copies_as_neighbours():
    x = torch.tensor([[0.0], [0.0], [0.0], [10.0]], dtype=torch.float64)
    np.testing.assert_allclose(knn_radii(x, 2).numpy(), [0.0, 0.0, 0.0, 10.0])


def test_row_blocks_give_the_same_results(monkeypatch):
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(53, 5)), rng.normal(0.3, 1, size=(41, 5))
    whole_pr = precision_recall_of_features(real, fake, k=3)
    whole_dc = density_coverage_of_features(real, fake, k=4)
    whole_radii = knn_radii(torch.from_numpy(real), 3)
    monkeypatch.setattr(prdc, "ROW_BLOCK", 7)  # 53 and 41 rows: uneven last blocks
    assert precision_recall_of_features(real, fake, k=3) == whole_pr
    assert density_coverage_of_features(real, fake, k=4) == whole_dc
    torch.testing.assert_close(knn_radii(torch.from_numpy(real), 3), whole_radii)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(40, 3))
    fake = rng.normal(0.7, 1.3, size=(35, 3))
    expected = prdc_brute_force(real, fake, k_pr=3, k_dc=5)
    pr = precision_recall_of_features(real, fake)  # defaults: k=3 and k=5
    dc = density_coverage_of_features(real, fake)
    assert (pr.k, dc.k) == (3, 5)
    assert pr.precision == pytest.approx(expected["precision"])
    assert pr.recall == pytest.approx(expected["recall"])
    assert dc.density == pytest.approx(expected["density"])
    assert dc.coverage == pytest.approx(expected["coverage"])
    # the scores are not all trivially 0 or 1 on this data
    assert 0 < pr.precision < 1 and 0 < pr.recall < 1 and 0 < dc.coverage < 1


def test_precision_and_recall_swap_with_the_arguments():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(80, 4)), rng.normal(0.5, 0.5, size=(60, 4))
    ab, ba = precision_recall_of_features(a, b), precision_recall_of_features(b, a)
    assert (ab.precision, ab.recall) == (ba.recall, ba.precision)
    assert ab.precision != ab.recall


def test_same_distribution_density_near_one_coverage_high():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    dc = density_coverage_of_features(real, fake, k=5)
    assert dc.density == pytest.approx(1.0, abs=0.15)
    assert dc.coverage > 0.9  # expected about 1 - 2^-5 for equal sizes
    pr = precision_recall_of_features(real, fake, k=3)
    assert pr.precision > 0.6 and pr.recall > 0.6


def test_disjoint_distributions_score_zero():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(200, 4)), rng.normal(50.0, 1.0, size=(200, 4))
    assert precision_recall_of_features(real, fake) == prdc.PrecisionRecall(0.0, 0.0, 3)
    assert density_coverage_of_features(real, fake) == prdc.DensityCoverage(0.0, 0.0, 5)


def test_k_matters():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(300, 6)), rng.normal(0.8, 0.7, size=(300, 6))
    small = precision_recall_of_features(real, fake, k=1)
    large = precision_recall_of_features(real, fake, k=10)
    # bigger balls: both scores can only grow, and here they grow a lot
    assert large.precision > small.precision + 0.1
    assert large.recall > small.recall + 0.1
    assert (small.k, large.k) == (1, 10)
    dc_small = density_coverage_of_features(real, fake, k=1)
    dc_large = density_coverage_of_features(real, fake, k=10)
    assert dc_large.coverage > dc_small.coverage + 0.1


def test_too_few_points_for_k_is_an_error():
    rng = np.random.default_rng(7)
    with pytest.raises(GanforgeError, match="k=3"):
        precision_recall_of_features(rng.normal(size=(3, 2)), rng.normal(size=(10, 2)), k=3)
    with pytest.raises(GanforgeError, match="k=3"):
        precision_recall_of_features(rng.normal(size=(10, 2)), rng.normal(size=(3, 2)), k=3)
    with pytest.raises(GanforgeError, match="k=5"):
        density_coverage_of_features(rng.normal(size=(5, 2)), rng.normal(size=(10, 2)), k=5)
    with pytest.raises(GanforgeError, match="2-D"):
        density_coverage_of_features(rng.normal(size=(10, 2, 1)), rng.normal(size=(10, 2)))


# -- mode collapse on real digits ----------------------------------------------------------------


def test_real_vs_real_split_scores_high(digits_setup):
    _, _, features, half_a, half_b = digits_setup
    pr = precision_recall_of_features(features[half_a], features[half_b])
    dc = density_coverage_of_features(features[half_a], features[half_b])
    assert pr.precision > 0.8 and pr.recall > 0.8
    assert dc.coverage > 0.85
    assert dc.density == pytest.approx(1.0, abs=0.2)


def test_one_digit_class_is_precise_but_has_low_recall(digits_setup):
    data, _, features, half_a, half_b = digits_setup
    labels = data.labels.numpy()
    sevens = half_b[labels[half_b] == 7]
    pr = precision_recall_of_features(features[half_a], features[sevens])
    dc = density_coverage_of_features(features[half_a], features[sevens])
    assert pr.precision > 0.8
    assert pr.recall < 0.2
    assert dc.coverage < 0.2


def test_near_copies_of_a_few_images_are_precise_but_have_no_recall(digits_setup):
    data, extractor, features, half_a, half_b = digits_setup
    copies = data.images[half_b[:10]].repeat(40, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    copies = (copies.float() + 6 * torch.randn(copies.shape, generator=g)).round()
    fake = extract_features(extractor, copies.clamp(0, 255).to(torch.uint8)).features
    pr = precision_recall_of_features(features[half_a], fake)
    dc = density_coverage_of_features(features[half_a], fake)
    assert pr.precision > 0.7
    assert pr.recall < 0.05
    assert dc.coverage < 0.1

"""Inception Score and mode coverage from logits: closed-form cases, a reference implementation,
splits, thresholds, and real digits vs. copies of one digit under the shipped classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch

from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import extract_features, load_extractor, real_features
from ganforge.metrics.class_scores import (
    CONFIDENT,
    FAIR_SHARE_FRACTION,
    InceptionScore,
    ModeCoverage,
    class_histogram,
    inception_score_of_logits,
    kl_to_uniform,
    mode_coverage_of_logits,
)


def one_hot_logits(classes: np.ndarray, num_classes: int, scale: float = 50.0) -> np.ndarray:
    return scale * np.eye(num_classes)[classes]


def inception_score_reference(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """The original IS code (Salimans et al.) on softmax probabilities, splits N*i//splits."""
    p = scipy.special.softmax(logits, axis=1)
    n = len(p)
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        py = part.mean(axis=0)
        kl = (part * (np.log(part) - np.log(py)[None, :])).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


# -- inception score ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, 10, 37])
def test_confident_uniform_predictions_score_the_number_of_classes(num_classes):
    classes = np.tile(np.arange(num_classes), 20)  # every split holds every class equally
    score = inception_score_of_logits(
        one_hot_logits(classes, num_classes), splits=4, shuffle_seed=None
    )
    assert score.mean == pytest.approx(num_classes, rel=1e-6)
    assert score.std == pytest.approx(0.0, abs=1e-6)
    assert score == InceptionScore(score.mean, score.std, 4)


def test_identical_predictions_score_one():
    logits = np.tile(np.random.default_rng(0).normal(size=(1, 10)) * 3, (100, 1))
    assert inception_score_of_logits(logits).mean == pytest.approx(1.0, abs=1e-6)
    # confident but always the same class: also 1
    confident_collapse = one_hot_logits(np.zeros(100, dtype=int), 10)
    assert inception_score_of_logits(confident_collapse).mean == pytest.approx(1.0, abs=1e-6)
    # flat p(y|x) (the classifier recognises nothing): also 1
    assert inception_score_of_logits(np.zeros((50, 10)), splits=5).mean == pytest.approx(1.0)


def test_half_the_classes_scores_half():
    classes = np.tile(np.arange(5), 40)
    assert inception_score_of_logits(
        one_hot_logits(classes, 10), shuffle_seed=None
    ).mean == pytest.approx(5.0)


@pytest.mark.parametrize(("n", "splits"), [(100, 10), (97, 10), (11, 10), (60, 1), (45, 7)])
def test_inception_score_matches_reference(n, splits):
    logits = np.random.default_rng(n).normal(size=(n, 10)) * 2.5
    mean, std = inception_score_reference(logits, splits)
    score = inception_score_of_logits(logits, splits=splits, shuffle_seed=None)
    assert score.splits == splits
    assert score.mean == pytest.approx(mean, rel=1e-9)
    assert score.std == pytest.approx(std, rel=1e-9, abs=1e-12)
    assert 1.0 <= score.mean <= 10.0


def test_inception_score_accepts_torch_and_numpy_alike():
    logits = np.random.default_rng(1).normal(size=(40, 5)).astype(np.float32)
    expected = inception_score_of_logits(logits, splits=4)
    assert inception_score_of_logits(torch.from_numpy(logits), splits=4) == expected


def test_inception_score_splits_validation():
    logits = np.random.default_rng(2).normal(size=(9, 10))
    with pytest.raises(GanforgeError, match="9 samples cannot make 10 splits"):
        inception_score_of_logits(logits, splits=10)
    with pytest.raises(GanforgeError, match="splits"):
        inception_score_of_logits(logits, splits=0)
    with pytest.raises(GanforgeError, match="2-D"):
        inception_score_of_logits(logits[0])
    assert inception_score_of_logits(logits, splits=9).splits == 9


# -- mode coverage -----------------------------------------------------------------------------


def test_class_histogram_and_kl_to_uniform():
    histogram = class_histogram(np.array([0, 0, 1, 3]), 5)
    np.testing.assert_allclose(histogram, [0.5, 0.25, 0, 0.25, 0])
    p = np.array([0.5, 0.25, 0.0, 0.25, 0.0])
    assert kl_to_uniform(p) == pytest.approx(scipy.stats.entropy(p, np.full(5, 0.2)))
    assert kl_to_uniform(np.full(7, 1 / 7)) == pytest.approx(0.0, abs=1e-12)
    assert kl_to_uniform(np.eye(7)[2]) == pytest.approx(math.log(7))


def test_mode_coverage_of_balanced_confident_logits():
    found = mode_coverage_of_logits(one_hot_logits(np.tile(np.arange(10), 30), 10))
    assert isinstance(found, ModeCoverage)
    assert (found.classes_found, found.num_classes) == (10, 10)
    assert found.histogram == pytest.approx((0.1,) * 10)
    assert found.kl_to_uniform == pytest.approx(0.0, abs=1e-12)
    assert found.confident == 1.0


def test_mode_coverage_fair_share_threshold():
    # 1000 samples of 10 classes: a class needs >= 0.2 * 1/10 = 2% (20 samples) to count
    assert FAIR_SHARE_FRACTION == 0.2
    rare, common = 19, 21
    for count, expected in [(rare, 9), (common, 10)]:
        classes = np.concatenate([np.repeat(np.arange(9), (1000 - count) // 9), [9] * count])
        found = mode_coverage_of_logits(one_hot_logits(classes, 10))
        assert found.classes_found == expected, count


def test_mode_coverage_confident_share():
    # the top probability of logits (a, 0, ..., 0) over 10 classes is e^a / (e^a + 9)
    a_confident = math.log(9 * CONFIDENT / (1 - CONFIDENT)) + 0.1
    a_unsure = a_confident - 0.5
    logits = np.zeros((10, 10))
    logits[:3, 0] = a_confident
    logits[3:, 0] = a_unsure
    assert mode_coverage_of_logits(logits).confident == pytest.approx(0.3)


# -- real digits under the shipped classifier --------------------------------------------------


@pytest.fixture(scope="module")
def digits_logits():
    data = load_dataset("mnist-mini")
    extractor = load_extractor("mnist")
    found = real_features(data.images, extractor, label="mnist-mini")
    return data, extractor, found.logits


def test_real_digits_cover_every_class(digits_logits):
    _, _, logits = digits_logits
    found = mode_coverage_of_logits(logits)
    assert found.classes_found == 10
    assert found.kl_to_uniform < 0.01
    assert found.confident > 0.9


def test_copies_of_one_digit_cover_one_class(digits_logits):
    data, extractor, _ = digits_logits
    seven = int(np.flatnonzero(data.labels.numpy() == 7)[0])
    copies = data.images[seven : seven + 1].repeat(200, 1, 1, 1)
    logits = extract_features(extractor, copies).logits
    found = mode_coverage_of_logits(logits)
    assert found.classes_found == 1
    assert found.histogram[7] == 1.0
    assert found.kl_to_uniform == pytest.approx(math.log(10), abs=1e-9)
    assert inception_score_of_logits(logits).mean == pytest.approx(1.0, abs=1e-3)


def test_one_class_of_real_digits(digits_logits):
    data, _, logits = digits_logits
    threes = logits[data.labels.numpy() == 3]
    found = mode_coverage_of_logits(threes)
    assert found.classes_found == 1
    assert found.kl_to_uniform > 0.95 * math.log(10)


def test_inception_score_of_shuffled_real_digits_is_near_ten(digits_logits):
    _, _, logits = digits_logits
    shuffled = logits[np.random.default_rng(0).permutation(len(logits))]
    score = inception_score_of_logits(shuffled)
    assert 9.0 < score.mean <= 10.0
    assert score.std < 0.5


def test_inception_score_shuffles_a_class_sorted_set_first(digits_logits):
    _, _, logits = digits_logits  # mnist-mini is sorted by label
    assert inception_score_of_logits(logits).mean > 9.0
    assert inception_score_of_logits(logits, shuffle_seed=None).mean < 2.0

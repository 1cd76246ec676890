"""Mode scores of a Gaussian mixture (PacGAN's protocol): expected values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganforge.metrics import mixture
from ganforge.metrics.mixture import MixtureScores, mixture_scores

S = math.sqrt(0.5)
RING = np.array([(1, 0), (S, S), (0, 1), (-S, S), (-1, 0), (-S, -S), (0, -1), (S, -S)])
STD = 0.01


def at_modes(counts: list[int]) -> np.ndarray:
    """counts[k] samples exactly at ring centre k."""
    return np.repeat(RING, counts, axis=0)


def test_four_of_eight_modes():
    scores = mixture_scores(at_modes([25, 0, 25, 0, 25, 0, 25, 0]), RING, STD)
    assert isinstance(scores, MixtureScores)
    assert scores.modes_captured == 4 and scores.num_modes == 8
    assert scores.high_quality == 1.0
    assert scores.histogram == (25, 0, 25, 0, 25, 0, 25, 0)
    # 4 modes at p = 1/4 against 1/8: 4 * 0.25 * log(0.25 / 0.125) = log 2
    assert scores.reverse_kl == pytest.approx(math.log(2), abs=1e-12)


def test_all_eight_modes_evenly():
    scores = mixture_scores(at_modes([10] * 8), RING, STD)
    assert scores.modes_captured == 8 and scores.high_quality == 1.0
    assert scores.reverse_kl == pytest.approx(0.0, abs=1e-12)
    assert scores.histogram == (10,) * 8


def test_one_mode_only():
    scores = mixture_scores(at_modes([0, 0, 0, 40, 0, 0, 0, 0]), RING, STD)
    assert scores.modes_captured == 1
    assert scores.reverse_kl == pytest.approx(math.log(8), abs=1e-12)  # 1 * log(1 / (1/8))


def test_samples_far_from_every_mode():
    # all beyond mode 0 (nearest to it, none good): the KL falls back to the nearest modes
    far = np.tile([10.0, 0.0], (50, 1))
    scores = mixture_scores(far, RING, STD)
    assert scores.high_quality == 0.0 and scores.modes_captured == 0
    assert scores.histogram == (0,) * 8
    assert scores.reverse_kl == pytest.approx(math.log(8), abs=1e-12)
    # a blur ten times the ring's size, evenly around it: nearest modes even, KL 0
    blur = np.repeat(10 * RING, 5, axis=0)
    scores = mixture_scores(blur, RING, STD)
    assert scores.high_quality == 0.0 and scores.modes_captured == 0
    assert scores.reverse_kl == pytest.approx(0.0, abs=1e-12)


def test_capture_threshold():
    # N = 400, M = 8: fair share 50, a fifth of it 10
    counts = [10, 9, 381, 0, 0, 0, 0, 0]
    scores = mixture_scores(at_modes(counts), RING, STD)
    assert scores.histogram == tuple(counts)
    assert scores.modes_captured == 2  # modes 0 (exactly 10) and 2; mode 1 (9) is lost
    # with a threshold of a tenth (5 samples), mode 1 is captured too
    assert mixture_scores(at_modes(counts), RING, STD, min_share=0.1).modes_captured == 3


def test_capture_threshold_counts_only_good_samples():
    # 10 samples at mode 0's centre make its fifth of a fair share (N = 400 -> 10) only if
    # they are good: moved out to 5 std they count in N but in no histogram bin
    good = at_modes([10, 0, 390, 0, 0, 0, 0, 0])
    assert mixture_scores(good, RING, STD).modes_captured == 2
    blurred = good.copy()
    blurred[:10] += [5 * STD, 0.0]
    scores = mixture_scores(blurred, RING, STD)
    assert scores.modes_captured == 1 and scores.histogram[0] == 0
    assert scores.high_quality == pytest.approx(390 / 400)


def test_quality_radius():
    direction = np.array([S, -S])  # off the axes, towards no other mode
    inside = RING[1] + 2.9 * STD * direction
    outside = RING[1] + 3.1 * STD * direction
    scores = mixture_scores(np.stack([inside, outside]), RING, STD)
    assert scores.high_quality == 0.5
    assert scores.histogram == (0, 1, 0, 0, 0, 0, 0, 0)
    wider = mixture_scores(np.stack([inside, outside]), RING, STD, quality_stds=4.0)
    assert wider.high_quality == 1.0 and wider.histogram[1] == 2


def test_non_finite_samples_count_but_belong_to_no_mode():
    samples = np.vstack([at_modes([1] * 8), [[np.nan, 0.0]], [[np.inf, np.inf]]])
    scores = mixture_scores(samples, RING, STD)
    assert scores.high_quality == pytest.approx(8 / 10)
    assert scores.histogram == (1,) * 8
    assert scores.modes_captured == 8  # 1 >= 0.2 * 10 / 8 = 0.25
    with pytest.raises(ValueError, match="non-finite"):
        mixture_scores(np.full((3, 2), np.nan), RING, STD)


def test_chunks_give_the_same_scores(monkeypatch):
    rng = np.random.default_rng(0)
    grid = np.array([(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], float)
    picks = rng.integers(0, 12, size=1000)  # 12 of the 25 modes
    samples = grid[picks] + 0.05 * rng.standard_normal((1000, 2))
    samples[::97] = np.nan
    assert mixture.CHUNK_ROWS >= 1000  # the default: one chunk
    whole = mixture_scores(samples, grid, 0.05)
    monkeypatch.setattr(mixture, "CHUNK_ROWS", 7)
    assert mixture_scores(samples, grid, 0.05) == whole
    # and the hand-made case, cut into chunks of 7 rows
    chunked = mixture_scores(at_modes([25, 0, 25, 0, 25, 0, 25, 0]), RING, STD)
    assert chunked.histogram == (25, 0, 25, 0, 25, 0, 25, 0)
    assert chunked.reverse_kl == pytest.approx(math.log(2), abs=1e-12)


@pytest.mark.parametrize(
    ("samples", "modes", "std", "match"),
    [
        (np.zeros((4, 3)), RING, STD, "dimensions"),
        (np.zeros(4), RING, STD, r"\(N, D\)"),
        (np.zeros((4, 2)), np.zeros((0, 2)), STD, "at least one"),
        (np.zeros((0, 2)), RING, STD, "at least one"),
        (np.zeros((4, 2)), RING, 0.0, "std"),
        (np.zeros((4, 2)), RING, float("nan"), "std"),
        (np.zeros((4, 2)), np.array([[np.nan, 0.0]]), STD, "finite"),
    ],
)
def test_bad_inputs(samples, modes, std, match):
    with pytest.raises(ValueError, match=match):
        mixture_scores(samples, modes, std)

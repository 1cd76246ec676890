"""Stacked-MNIST mode scores (PacGAN's Table 2 protocol): by hand on digit triples, and with the
packaged digit classifier on real stacked images, whole and collapsed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import load_extractor
from ganforge.metrics.catalog import MetricInputs, measure
from ganforge.metrics.stacked_modes import SAMPLES, channel_digits, stacked_mode_scores


@pytest.fixture(scope="module")
def classifier():
    return load_extractor("mnist")


@pytest.fixture(scope="module")
def real():
    """The test split: 26,000 stacked images, PacGAN's sample count."""
    return load_dataset("stacked-mnist", split="test")


def triples(modes) -> np.ndarray:
    modes = np.asarray(modes)
    return np.stack([modes // 100, modes // 10 % 10, modes % 10], axis=1)


def test_every_mode_once_is_all_modes_and_no_divergence():
    scores = stacked_mode_scores(triples(np.arange(1000)))
    assert (scores.modes_found, scores.num_modes) == (1000, 1000)
    assert scores.mode_kl == pytest.approx(0.0, abs=1e-12)
    assert scores.histogram == (1,) * 1000


@pytest.mark.parametrize("k", [1, 4, 250])
def test_k_modes_evenly_is_log_1000_over_k(k):
    modes = np.repeat(np.arange(k) * 3 + 7, 12)  # 12 samples on each of k modes
    scores = stacked_mode_scores(triples(modes))
    assert scores.modes_found == k
    assert scores.mode_kl == pytest.approx(math.log(1000 / k), abs=1e-12)
    assert scores.histogram[7] == 12 and sum(scores.histogram) == 12 * k


def test_an_uneven_spread_by_hand():
    # 3 samples on mode 307, 1 on mode 0: p = (3/4, 1/4)
    scores = stacked_mode_scores(triples([307, 307, 307, 0]))
    expected = 0.75 * math.log(0.75 * 1000) + 0.25 * math.log(0.25 * 1000)
    assert scores.modes_found == 2 and scores.mode_kl == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros((4, 2)), np.full((4, 3), 10)])
def test_bad_triples_are_refused(bad):
    with pytest.raises(ValueError):
        stacked_mode_scores(bad)


def test_each_channel_is_read_as_the_classifier_reads_that_digit_alone(classifier, real):
    """Reading a channel once and remembering it gives what reading every channel gives."""
    images = real.images[:200]
    with torch.inference_mode():
        _, logits = classifier(images.reshape(-1, 1, 28, 28))
    expected = logits.argmax(dim=1).reshape(-1, 3).numpy()
    assert np.array_equal(channel_digits(classifier, images), expected)
    in_batches = channel_digits(classifier, iter(images.split(33)))  # a stream, other batches
    assert np.array_equal(in_batches, expected)
    channels_last = channel_digits(classifier, images.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(channels_last, expected)


def test_real_stacked_images_find_nearly_every_mode(classifier, real):
    assert len(real) == SAMPLES
    digits = channel_digits(classifier, real.images)
    read = digits @ np.array([100, 10, 1])
    labels = real.labels.numpy()
    assert (read == labels).mean() > 0.99  # the classifier reads ~99.8% of the split's digits
    # the bound comes from the labels: the modes they hold, their histogram's KL to uniform
    counts = np.bincount(labels, minlength=1000)
    p = counts[counts > 0] / len(labels)
    labels_kl = float(np.sum(p * np.log(p * 1000)))
    assert (counts > 0).sum() == 1000 and labels_kl < 0.03  # ~999 / (2 x 26,000) = 0.019
    scores = stacked_mode_scores(digits)
    assert scores.modes_found >= 995
    assert abs(scores.mode_kl - labels_kl) < 0.005


def test_a_collapsed_set_finds_only_its_modes(classifier, real):
    k = 5
    _, first = np.unique(real.labels.numpy(), return_index=True)
    picked = torch.from_numpy(first[[0, 111, 307, 512, 999]])  # 5 images of 5 different modes
    collapsed = real.images[picked].repeat(SAMPLES // k, 1, 1, 1)
    values = measure(
        ("stacked",), MetricInputs(channel_digits=channel_digits(classifier, collapsed))
    )
    assert values["modes_found"] == k and values["num_modes"] == 1000
    assert values["mode_kl"] == pytest.approx(math.log(1000 / k), abs=1e-6)
    found = [mode for mode, count in enumerate(values["mode_histogram"]) if count]
    assert found == sorted(real.labels[picked].tolist())


def test_it_needs_rgb_digits_and_a_digit_classifier(classifier, real):
    with pytest.raises(GanforgeError, match="3 channels"):
        channel_digits(classifier, real.images[:4, :1])
    fashion = load_extractor("fashion-mnist")
    with pytest.raises(GanforgeError, match="digits 0-9"):
        channel_digits(fashion, real.images[:4])

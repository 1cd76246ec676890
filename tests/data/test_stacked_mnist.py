"""stacked-mnist: three real mnist-mini digits as R, G and B, labelled by the mode they make,
each split from its own digits and its own seed; listed and described like the other data."""

from __future__ import annotations

import pytest
import torch

from ganforge.data import list_datasets, load_dataset
from ganforge.data.bundled import load_mnist_mini
from ganforge.data.digit_pairs import split_indices
from ganforge.data.info import dataset_info
from ganforge.errors import GanforgeError

CHECKED = 3000  # images of each split whose every channel is looked up among the real digits


@pytest.fixture(scope="module")
def splits():
    return {split: load_dataset("stacked-mnist", split=split) for split in ("train", "test")}


def _digits_of(split: str) -> dict[bytes, int]:
    """Each mnist-mini digit of `split` (its pixels) -> its label."""
    digits = load_mnist_mini()
    chosen = split_indices(digits.labels, split)
    return {
        digits.images[i].numpy().tobytes(): int(digits.labels[i])
        for i in chosen.tolist()  # a digit's pixels are unique in mnist-mini's 5,000
    }


@pytest.mark.parametrize("split, size", [("train", 60_000), ("test", 26_000)])
def test_each_channel_is_a_real_digit_of_its_split_and_the_label_is_the_triple(splits, split, size):
    data = splits[split]
    assert data.images.shape == (size, 3, 28, 28) and data.images.dtype == torch.uint8
    assert (data.channels, data.resolution, data.num_classes) == (3, 28, 1000)
    own, other = _digits_of(split), _digits_of("test" if split == "train" else "train")
    for image, label in zip(data.images[:CHECKED], data.labels[:CHECKED].tolist()):
        channels = [channel.numpy().tobytes() for channel in image]
        assert all(c in own and c not in other for c in channels)
        r, g, b = (own[c] for c in channels)
        assert label == 100 * r + 10 * g + b
        assert data.class_names[label] == f"{r}-{g}-{b}"


def test_every_mode_is_present_and_the_modes_are_balanced(splits):
    for data in splits.values():
        counts = torch.bincount(data.labels, minlength=1000)
        assert len(counts) == 1000 and counts.min() > 0
        mean = len(data) / 1000
        # independent uniform digits: each count is Binomial(N, 1/1000), sd ~ sqrt(mean)
        assert counts.float().std() < 1.3 * mean**0.5


def test_splits_are_deterministic_and_differ(splits):
    again = load_dataset("stacked-mnist", split="test")
    assert torch.equal(again.images, splits["test"].images)
    assert torch.equal(again.labels, splits["test"].labels)
    train, test = splits["train"], splits["test"]
    assert not torch.equal(train.labels[: len(test)], test.labels)
    assert not torch.equal(train.images[:100], test.images[:100])


def test_it_converts_like_any_image_dataset():
    gray = load_dataset("stacked-mnist", split="test", resolution=32, channels=1)
    assert gray.images.shape == (26_000, 1, 32, 32)


def test_it_is_listed_and_described():
    assert "stacked-mnist" in list_datasets(layout="images")
    info = dataset_info("stacked-mnist")
    assert "images    60000, uint8, 3 x 28 x 28" in info
    assert "classes   1000: 0-0-0 (" in info and "and 980 more" in info


def test_an_unknown_split_is_refused():
    with pytest.raises(GanforgeError, match="--data stacked-mnist: split 'valid'"):
        load_dataset("stacked-mnist", split="valid")

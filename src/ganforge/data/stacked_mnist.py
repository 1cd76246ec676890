"""Stacked MNIST (Metz et al. 2017; VEEGAN; PacGAN): three real digits stacked as the R, G and B
channels of one 28x28 image, so the data has 10^3 = 1,000 modes, one per digit triple — the
mode-collapse benchmark with many modes on real images.

Each image takes three digits drawn independently and uniformly at random (with replacement)
from the matching split of mnist-mini (digit_pairs.split_indices: "test" holds the last 50
digits of each class, "train" the other 4,500), from a fixed seed per split: both splits are
the same on every machine and share no digit. Its label is its mode, 100 x R + 10 x G + B,
named "R-G-B" ("3-0-7" is 307).

Sizes: "train" holds 60,000 images (MNIST's own training size): about 60 of each mode, every
mode present, 141 MB of uint8 made in a fraction of a second. PacGAN trained on 128,000; with
4,500 source digits the distinct triples are practically unlimited either way, so the smaller
set keeps a laptop's memory free at no cost to the modes. "test" holds 26,000, exactly the
samples PacGAN's protocol scores, so the real test split is measured as a generator would be.
"""

from __future__ import annotations

import torch

from ganforge.data.bundled import load_mnist_mini
from ganforge.data.dataset import ImageDataset
from ganforge.data.digit_pairs import split_indices
from ganforge.errors import GanforgeError

NAME = "stacked-mnist"
NUM_MODES = 1000
SPLIT_SIZES = {"train": 60_000, "test": 26_000}
SPLIT_SEEDS = {"train": 2017, "test": 2018}
PLACE_VALUES = torch.tensor([100, 10, 1])  # mode = 100 R + 10 G + B
MODE_NAMES = [f"{m // 100}-{m // 10 % 10}-{m % 10}" for m in range(NUM_MODES)]


def load_stacked_mnist(split: str = "train") -> ImageDataset:
    """The `split` of stacked MNIST: images uint8 (N, 3, 28, 28), labels the modes (0-999)."""
    if split not in SPLIT_SIZES:
        raise GanforgeError(f"--data {NAME}: split '{split}' is not one of train, test")
    digits = load_mnist_mini()
    pool = split_indices(digits.labels, split)
    generator = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    picks = pool[torch.randint(len(pool), (SPLIT_SIZES[split], 3), generator=generator)]
    images = digits.images[picks].squeeze(2)  # (N, 3, 1, 28, 28) -> (N, 3, 28, 28)
    labels = (digits.labels[picks] * PLACE_VALUES).sum(dim=1)
    return ImageDataset(images, labels, NAME, MODE_NAMES, location=digits.location)

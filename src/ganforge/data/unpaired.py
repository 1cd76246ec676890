"""Unpaired translation data (CycleGAN): two sets of images, side A and side B, never aligned.

An ImageDataset holds them as `sources` (A) and `images` (B), as paired data does, so the
batching is the same; but image i of B was placed at random, by a fixed seed, next to image i
of A, so nothing pairs them. A folder for `--data PATH` holds an `A/` and a `B/` folder of
images (any names, any counts: the smaller side repeats to the larger's length).

The offline demo `mnist-mini-edges-unpaired` takes mnist-mini-edges (edge map -> digit) and
shuffles the digits away from their edge maps in its "train" split: the model never sees a
pair. Its "test" split keeps the held-out pairs aligned: an evaluator knows the true answer
(`ganforge eval` scores translations with L1/PSNR/SSIM against them).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.data.dataset import ImageDataset
from ganforge.data.digit_pairs import load_digit_pairs
from ganforge.data.folder import load_image_folder
from ganforge.errors import GanforgeError

SHUFFLE_SEED = 1703  # the fixed random placement of B's images next to A's
SIDES = ("A", "B")


def unpaired(a: torch.Tensor, b: ImageDataset, name: str, seed: int = SHUFFLE_SEED):
    """Side A images `a` (uint8 NCHW) and side B `b`, as one ImageDataset of the larger
    length: A in order (repeated if shorter), B in a seeded random order (repeated if shorter),
    with B's labels."""
    length = max(len(a), len(b))
    order = torch.randperm(length, generator=torch.Generator().manual_seed(seed)) % len(b)
    return ImageDataset(
        b.images[order],
        b.labels[order],
        name,
        b.class_names,
        location=b.location,
        sources=a[torch.arange(length) % len(a)],
    )


def open_unpaired_folder(
    name: str, resolution: int | None, channels: int | None, strict: bool, options, cache
) -> ImageDataset:
    """`--data PATH` for an unpaired translator: PATH/A and PATH/B, folders of images."""
    root = Path(name).expanduser()
    if not root.is_dir():
        raise GanforgeError(
            f"--data: '{name}' is not a folder with A/ and B/ folders of images (unpaired data "
            "for a translator such as cyclegan)"
        )
    missing = [side for side in SIDES if not (root / side).is_dir()]
    if missing:
        raise GanforgeError(f"--data: folder '{root}' has no {' or '.join(missing)}/ folder")
    a = load_image_folder(root / "A", resolution, channels, strict, options.progress)
    # B at A's size and channels, so that one network maps each side to the other
    b = load_image_folder(root / "B", a.resolution, a.channels, strict, options.progress)
    return unpaired(a.images, b, str(root))


def load_unpaired_digits(task: str, split: str = "train") -> ImageDataset:
    """mnist-mini-`task`-unpaired: the "train" split of the paired task with its digits
    shuffled away from their sources; the "test" split aligned (for scoring only)."""
    pairs = load_digit_pairs(task, split)
    name = f"mnist-mini-{task}-unpaired"
    if split == "test":
        return ImageDataset(
            pairs.images,
            pairs.labels,
            name,
            pairs.class_names,
            location=pairs.location,
            sources=pairs.sources,
        )
    return unpaired(pairs.sources, pairs, name)

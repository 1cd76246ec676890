"""Paired translation tasks made from the bundled real digits (mnist-mini), so that pix2pix's
demo and tests need no download:

- mnist-mini-edges: the digit's edge map (Sobel gradient magnitude) -> the digit;
- mnist-mini-inpaint: the digit with a gray square over part of it -> the whole digit.

Both are deterministic (the squares' places come from a fixed seed, one per image in dataset
order). Split "test" holds the last HELD_OUT_PER_CLASS digits of each class (500 pairs) and
"train" the other 4,500, so that a translator is measured on pairs it never saw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.data.bundled import load_mnist_mini
from ganforge.data.dataset import ImageDataset
from ganforge.errors import GanforgeError

TASKS = {
    "edges": "edge map -> digit",
    "inpaint": "digit with a gray square -> whole digit",
}
SPLITS = ("train", "test")
HELD_OUT_PER_CLASS = 50
MASK_SIZE = 10  # pixels of the 28x28 digit: about a quarter of the digit's box
MASK_MARGIN = 4  # MNIST digits sit in the central 20x20; the square stays inside that box
MASK_VALUE = 128  # mid-gray (0 in the model's range): unlike black, it shows what is missing
MASK_SEED = 2017


def load_digit_pairs(task: str, split: str = "train") -> ImageDataset:
    """The `split` of the paired task `task` (a key of TASKS): sources and images uint8
    (N, 1, 28, 28), labels the digits."""
    if task not in TASKS:
        raise ValueError(f"unknown digit-pair task '{task}'")
    name = f"mnist-mini-{task}"
    if split not in SPLITS:
        raise GanforgeError(f"--data {name}: split '{split}' is not one of {', '.join(SPLITS)}")
    digits = load_mnist_mini()
    sources = edge_map(digits.images) if task == "edges" else masked_squares(digits.images)
    chosen = split_indices(digits.labels, split)
    return ImageDataset(
        digits.images[chosen],
        digits.labels[chosen],
        name,
        digits.class_names,
        location=digits.location,
        sources=sources[chosen],
    )


def split_indices(labels: torch.Tensor, split: str) -> torch.Tensor:
    """Indices of `split`: "test" is the last HELD_OUT_PER_CLASS images of each class (in
    dataset order), "train" all the others; both in dataset order."""
    held_out = torch.zeros(len(labels), dtype=torch.bool)
    for label in labels.unique():
        held_out[(labels == label).nonzero().squeeze(1)[-HELD_OUT_PER_CLASS:]] = True
    return (held_out if split == "test" else ~held_out).nonzero().squeeze(1)


def edge_map(images: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of uint8 (N, 1, H, W) images, scaled so that each image's
    strongest edge is 255: uint8 (N, 1, H, W)."""
    x = images.float() / 255
    kernel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kernel, kernel.T]).unsqueeze(1)  # d/dx and d/dy
    gradients = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = gradients.pow(2).sum(dim=1, keepdim=True).sqrt()
    peak = magnitude.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return (magnitude / peak * 255).round().to(torch.uint8)


def masked_squares(images: torch.Tensor, seed: int = MASK_SEED) -> torch.Tensor:
    """Copies of uint8 (N, 1, H, W) images with a MASK_SIZE square set to MASK_VALUE, placed
    inside the central box by a generator seeded with `seed` (image i: the i-th draw)."""
    n, _, height, width = images.shape
    corners = torch.randint(
        MASK_MARGIN,
        min(height, width) - MASK_MARGIN - MASK_SIZE + 1,
        (n, 2, 1, 1),
        generator=torch.Generator().manual_seed(seed),
    )
    top, left = corners[:, 0], corners[:, 1]  # (N, 1, 1)
    rows = torch.arange(height).view(1, height, 1)
    columns = torch.arange(width).view(1, 1, width)
    inside = (rows >= top) & (rows < top + MASK_SIZE) & (columns >= left)
    inside &= columns < left + MASK_SIZE
    return images.masked_fill(inside.unsqueeze(1), MASK_VALUE)

"""DiffAugment (Zhao et al. 2020): random, differentiable transformations T applied to every
image D sees, real and fake alike and in both phases, so D judges D(T(x)) against D(T(G(z)))
and G learns through T. With little data D then cannot memorise the training images, and G
is not taught to reproduce the augmentations (they are applied to its output too).

Images are float NCHW in [-1, 1]; each function draws its randomness per image from torch's
global RNG (saved in checkpoints, so resume stays exact) and is differentiable in its input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _per_image(images: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """One uniform draw in [low, high) per image, shaped (N, 1, 1, 1) to broadcast."""
    draw = torch.rand(images.shape[0], 1, 1, 1, dtype=images.dtype, device=images.device)
    return low + (high - low) * draw


def color(images: torch.Tensor) -> torch.Tensor:
    """Random brightness (add U(-0.5, 0.5)), saturation (scale the distance to the mean over
    channels by U(0, 2)) and contrast (scale the distance to the image mean by U(0.5, 1.5))."""
    images = images + _per_image(images, -0.5, 0.5)
    gray = images.mean(dim=1, keepdim=True)
    images = gray + (images - gray) * _per_image(images, 0.0, 2.0)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (images - mean) * _per_image(images, 0.5, 1.5)


def translation(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a random whole number of pixels, up to `ratio` of its size in each
    direction; the pixels shifted in are zeros."""
    n, _, height, width = images.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1), device=device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1), device=device)
    padded = torch.nn.functional.pad(images, (max_dx, max_dx, max_dy, max_dy))
    rows = torch.arange(height, device=device) + max_dy - dy  # (N, H): source row of each row
    cols = torch.arange(width, device=device) + max_dx - dx  # (N, W)
    batch = torch.arange(n, device=device)[:, None, None]
    shifted = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return shifted.permute(0, 3, 1, 2)


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of `ratio` times the image size (half by default) centred at a random
    pixel of each image (clipped at the border)."""
    n, _, height, width = images.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    top = torch.randint(0, height, (n, 1, 1), device=device) - size_y // 2
    left = torch.randint(0, width, (n, 1, 1), device=device) - size_x // 2
    ys = torch.arange(height, device=device)[None, :, None]
    xs = torch.arange(width, device=device)[None, None, :]
    inside = (ys >= top) & (ys < top + size_y) & (xs >= left) & (xs < left + size_x)
    return images * (~inside).unsqueeze(1).to(images.dtype)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def diff_augment(images: torch.Tensor, policies: Sequence[str]) -> torch.Tensor:
    """Apply the named augmentations (config.diffaugment_policies) in order; none: unchanged."""
    for name in policies:
        images = AUGMENTATIONS[name](images)
    return images

"""Sample grids as PNG and raw samples as NPZ."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.atomic import atomic_path
from ganforge.errors import GanforgeError

PAIRED_COLUMNS = 8  # images per row of a grid of inputs over outputs
MIN_CELL_PIXELS = 56  # small images are enlarged (nearest) so a grid is readable on screen


def cell_scale(height: int, width: int) -> int:
    """How many times a cell is enlarged so that it is at least MIN_CELL_PIXELS on a side."""
    return max(1, math.ceil(MIN_CELL_PIXELS / max(height, width)))


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """uint8 (N, H, W, C) -> one uint8 (rows*H', cols*W', C) picture on a white background."""
    n, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    scale = cell_scale(height, width)
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        height, width = height * scale, width * scale
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        255,
        dtype=np.uint8,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_images(
    images: np.ndarray,
    path: str | Path,
    labels: np.ndarray | None = None,
    columns: int | None = None,
    extra: dict[str, np.ndarray] | None = None,
    row_labels: list[str] | None = None,
    cell_labels: list[str] | None = None,
) -> Path:
    """Write samples by file type: .png/.jpg -> a grid picture (with `row_labels` left of its
    rows and `cell_labels` under its cells, if given); .npz -> `images` (and `labels`, and the
    `extra` arrays that say how they were drawn, e.g. `truncation_psi`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
        arrays.update(extra or {})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
    elif suffix in (".png", ".jpg", ".jpeg", ".webp"):
        if row_labels or cell_labels:
            from ganforge.report.labels import labelled_grid

            columns = columns or math.ceil(math.sqrt(len(images)))
            picture = labelled_grid(images, columns, row_labels, cell_labels)
        else:
            grid = image_grid(images, columns)
            picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
        with atomic_path(path) as tmp:
            picture.save(tmp, format=Image.registered_extensions()[suffix])
    else:
        raise GanforgeError(f"--out: '{path}' must end in .png, .jpg, .webp or .npz")
    return path


def paired_rows(inputs: torch.Tensor, outputs: torch.Tensor, columns: int = PAIRED_COLUMNS):
    """A row of inputs, then the row of their outputs (reconstructions), and so on: uint8
    (2N', H, W, C) with N' = N rounded up to whole rows (white cells fill the last), and its
    column count."""
    columns = min(columns, len(inputs))
    pad = -len(inputs) % columns
    if pad:
        blank = torch.full((pad, *inputs.shape[1:]), 255, dtype=torch.uint8)
        inputs, outputs = torch.cat([inputs, blank]), torch.cat([outputs, blank])
    rows = torch.stack(
        [inputs.unflatten(0, (-1, columns)), outputs.unflatten(0, (-1, columns))], dim=1
    )
    return rows.flatten(0, 2).permute(0, 2, 3, 1).numpy(), columns

"""Grids that say what they show: a label left of each row (a class name, "a - b + c") and a
caption under each cell (the seed to pick for `ganforge latent arith`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganforge.report.grid import cell_scale

LABEL_PIXELS = 11  # the default font's height, as the GIF captions use
MARGIN = 4  # pixels around a row label


def labelled_grid(
    images: np.ndarray,
    columns: int,
    row_labels: Sequence[str] | None = None,
    cell_labels: Sequence[str] | None = None,
    padding: int = 2,
) -> Image.Image:
    """uint8 (N, H, W, C) as a picture of `columns` per row (enlarged as image_grid does),
    with `row_labels` (one per row) in a left margin and `cell_labels` (one per image) in a
    strip under each cell. Black text on white."""
    n, height, width, channels = images.shape
    rows = -(-n // columns)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    if cell_labels is not None and len(cell_labels) != n:
        raise ValueError(f"{len(cell_labels)} cell labels for {n} images")
    scale = cell_scale(height, width)
    images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    height, width = height * scale, width * scale
    font = ImageFont.load_default(LABEL_PIXELS)
    left = 0
    if row_labels:
        left = int(max(font.getlength(label) for label in row_labels)) + 2 * MARGIN
    strip = LABEL_PIXELS + 2 if cell_labels else 0
    pitch_y, pitch_x = height + strip + padding, width + padding
    mode = "L" if channels == 1 else "RGB"
    picture = Image.new(
        mode, (left + columns * pitch_x + padding, rows * pitch_y + padding), "white"
    )
    draw = ImageDraw.Draw(picture)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        x, y = left + padding + column * pitch_x, padding + row * pitch_y
        picture.paste(Image.fromarray(image[..., 0] if channels == 1 else image), (x, y))
        if cell_labels:
            draw.text((x + 1, y + height + 1), cell_labels[index], fill="black", font=font)
    for row, label in enumerate(row_labels or ()):
        middle = padding + row * pitch_y + height // 2
        draw.text((MARGIN, middle), label, fill="black", font=font, anchor="lm")
    return picture

"""Labelled grids: row labels in a left margin, captions under cells, the images untouched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganforge.report.grid import cell_scale, image_grid
from ganforge.report.labels import labelled_grid


def images(n=6, size=28, channels=1, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def dark_pixels(picture: Image.Image, box) -> int:
    return int((np.asarray(picture.convert("L").crop(box)) < 128).sum())


def test_row_labels_sit_in_a_left_margin_and_leave_the_cells_as_they_were():
    cells = images()
    plain = image_grid(cells, 3)[..., 0]
    picture = labelled_grid(cells, 3, row_labels=["zero", "a much longer label"])
    pixels = np.asarray(picture)
    margin = pixels.shape[1] - plain.shape[1]
    assert margin > 0 and pixels.shape[0] == plain.shape[0]
    assert np.array_equal(pixels[:, margin:], plain)  # the grid itself, shifted right
    half = plain.shape[0] // 2
    assert dark_pixels(picture, (0, 0, margin, half)) > 0  # "zero" beside the first row
    assert dark_pixels(picture, (0, half, margin, pixels.shape[0])) > 0
    wider = labelled_grid(cells, 3, row_labels=["zero", "a much longer label still, longer"])
    assert wider.width > picture.width  # the margin fits the longest label


def test_cell_captions_sit_under_each_cell():
    cells = images(4, channels=3)
    picture = labelled_grid(cells, 2, cell_labels=["0", "1", "2", "3"])
    assert picture.mode == "RGB"
    side = 28 * cell_scale(28, 28)
    first = np.asarray(picture)[2 : 2 + side, 2 : 2 + side]
    assert np.array_equal(first, cells[0].repeat(2, 0).repeat(2, 1))
    assert dark_pixels(picture, (2, 2 + side, 2 + side, 2 + side + 12)) > 0  # caption "0"
    plain = image_grid(cells, 2)
    assert picture.height > plain.shape[0] and picture.width == plain.shape[1]


def test_label_counts_must_match():
    with pytest.raises(ValueError, match="1 row labels for 2 rows"):
        labelled_grid(images(), 3, row_labels=["one"])
    with pytest.raises(ValueError, match="2 cell labels for 6 images"):
        labelled_grid(images(), 3, cell_labels=["a", "b"])

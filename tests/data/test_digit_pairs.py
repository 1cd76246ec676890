"""Paired data for translators: the offline digit tasks (edges, inpainting) and their held-out
split, pairs through the batch pipeline (mirrored together), and pairs by --data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.data import (
    ImageDataset,
    LoadOptions,
    RealBatches,
    list_datasets,
    load_dataset,
    open_dataset,
    to_model_range,
)
from ganforge.data.augment import hflip_decisions
from ganforge.data.digit_pairs import (
    HELD_OUT_PER_CLASS,
    MASK_SIZE,
    MASK_VALUE,
    edge_map,
    masked_squares,
)
from ganforge.training.batches import EpochBatches

TASKS = ("mnist-mini-edges", "mnist-mini-inpaint")


@pytest.fixture(scope="module")
def mnist_mini():
    return load_dataset("mnist-mini")


@pytest.mark.parametrize("name", TASKS)
def test_registered_as_paired_with_a_held_out_split(name, mnist_mini):
    assert name in list_datasets(layout="paired") and name in list_datasets()
    assert "mnist-mini" in list_datasets(layout="images")
    train, test = load_dataset(name), load_dataset(name, split="test")
    assert len(train) == 4500 and len(test) == 500
    assert train.paired and train.sources.shape == train.images.shape == (4500, 1, 28, 28)
    assert torch.bincount(test.labels).tolist() == [HELD_OUT_PER_CLASS] * 10
    # the two splits are the real digits, none in both: each digit appears exactly once
    both = torch.cat([train.images, test.images]).flatten(1)
    assert (
        torch.unique(both, dim=0).shape[0]
        == torch.unique(mnist_mini.images.flatten(1), dim=0).shape[0]
    )
    assert len(both) == len(mnist_mini)
    with pytest.raises(GanforgeError, match="split 'val'"):
        load_dataset(name, split="val")


@pytest.mark.parametrize("name", TASKS)
def test_tasks_are_deterministic(name):
    first, again = load_dataset(name, split="test"), load_dataset(name, split="test")
    assert torch.equal(first.sources, again.sources) and torch.equal(first.images, again.images)


def test_edge_maps_outline_the_digit(mnist_mini):
    digits = mnist_mini.images[:50]
    edges = edge_map(digits)
    assert edges.dtype == torch.uint8 and edges.shape == digits.shape
    assert (edges.flatten(1).amax(dim=1) == 255).all()  # each scaled to its strongest edge
    blank = digits == 0
    flat = torch.nn.functional.max_pool2d((~blank).float(), 3, 1, 1) == 0  # no ink nearby
    assert (edges[flat] == 0).all()  # nothing far from the strokes
    assert (edges[~blank].float().mean() > 40) and not torch.equal(edges, digits)


def test_masks_are_one_gray_square_inside_the_digit_box(mnist_mini):
    digits = mnist_mini.images[:200]
    masked = masked_squares(digits)
    assert torch.equal(masked, masked_squares(digits))  # seeded
    # where the squares are: the same draws on blank images (digits hold gray pixels too)
    squares = masked_squares(torch.zeros_like(digits))[:, 0] == MASK_VALUE
    corners = set()
    for source, digit, square in zip(masked[:, 0], digits[:, 0], squares):
        rows, cols = square.any(dim=1).nonzero(), square.any(dim=0).nonzero()
        top, left = int(rows.min()), int(cols.min())
        assert square.sum() == MASK_SIZE**2
        assert square[top : top + MASK_SIZE, left : left + MASK_SIZE].all()
        assert (source[square] == MASK_VALUE).all()
        assert torch.equal(source[~square], digit[~square])  # the rest untouched
        assert 4 <= top and top + MASK_SIZE <= 24 and 4 <= left and left + MASK_SIZE <= 24
        corners.add((top, left))
    assert len(corners) > 30  # the squares move from image to image


def test_to_shape_resizes_sources_with_the_images():
    pairs = load_dataset("mnist-mini-inpaint", resolution=32, channels=3, split="test")
    assert pairs.images.shape == pairs.sources.shape == (500, 3, 32, 32)
    assert not torch.equal(pairs.images, pairs.sources)


def test_batches_carry_sources_mirrored_with_their_images():
    pairs = load_dataset("mnist-mini-edges", split="test")
    order = EpochBatches(len(pairs), 25, seed=1)
    batches = RealBatches(pairs, order, hflip=True, seed=1)
    expected = EpochBatches(len(pairs), 25, seed=1)
    flips = hflip_decisions(1, 0, len(pairs))
    for _ in range(4):
        batch = batches.next()
        indices = expected.next_indices()
        sources = to_model_range(pairs.sources[indices])
        images = to_model_range(pairs.images[indices])
        flip = flips[indices]
        assert flip.any() and not flip.all()
        sources[flip], images[flip] = sources[flip].flip(-1), images[flip].flip(-1)
        assert torch.equal(batch["sources"], sources)
        assert torch.equal(batch["images"], images)
    digits = load_dataset("digits")
    plain = RealBatches(digits, EpochBatches(len(digits), 10, 0))
    assert "sources" not in plain.next()


def save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_folders_of_pairs_open_in_either_layout(tmp_path):
    pairs = load_dataset("mnist-mini-edges", split="test")
    edges, digits = pairs.sources[:6, 0].numpy(), pairs.images[:6, 0].numpy()
    for i in range(6):
        save(tmp_path / "sbs" / f"{i}.png", np.concatenate([edges[i], digits[i]], axis=1))
        save(tmp_path / "ab" / "A" / f"{i}.png", edges[i])
        save(tmp_path / "ab" / "B" / f"{i}.png", digits[i])
    for layout in ("sbs", "ab"):
        opened = open_dataset(str(tmp_path / layout), resolution=28, channels=1, layout="paired")
        assert isinstance(opened, ImageDataset) and opened.paired
        assert np.array_equal(opened.sources[:, 0].numpy(), edges)
        assert np.array_equal(opened.images[:, 0].numpy(), digits)
        assert (opened.labels == -1).all()


def test_unpaired_data_is_refused_by_name(tmp_path):
    with pytest.raises(
        GanforgeError, match="--data: 'digits' holds single images, not image pairs"
    ):
        open_dataset("digits", layout="paired")
    with pytest.raises(GanforgeError, match="--data: unknown dataset 'nope'.*mnist-mini-edges"):
        open_dataset("nope", layout="paired")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(GanforgeError, match="is a file, not image pairs"):
        open_dataset(str(tmp_path / "file.png"), layout="paired")
    with pytest.raises(GanforgeError, match="--data-cache: stream"):
        open_dataset("mnist-mini-edges", layout="paired", cache="stream")
    test = open_dataset("mnist-mini-edges", layout="paired", options=LoadOptions(split="test"))
    assert len(test) == 500


def test_pix2pix_on_single_images_is_a_one_line_error(tmp_path, capsys):
    args = ["train", "--model", "pix2pix", "--data", "digits", "--steps", "1"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: --data: 'digits' holds single images")
    assert "\n" not in err and not (tmp_path / "run").exists()


def test_pix2pix_trains_on_a_folder_of_pairs(tmp_path):
    pairs = load_dataset("mnist-mini-inpaint", split="test")
    for i in range(24):
        side_by_side = np.concatenate([pairs.sources[i, 0].numpy(), pairs.images[i, 0].numpy()], 1)
        save(tmp_path / "pairs" / f"{i:02d}.png", side_by_side)
    run = ganforge.train(
        model="pix2pix",
        data=str(tmp_path / "pairs"),
        resolution=32,
        channels=1,
        width=4,
        batch_size=8,
        steps=3,
        n_grid=4,
        progress=False,
        out=str(tmp_path / "run"),
    )
    assert run.step == 3 and run.config.resolution == 32
    grid = np.asarray(Image.open(run.path / "samples" / "final.png"))
    assert grid.shape[1] < grid.shape[0]  # rows of source | output | target: 3 columns, 4 rows


def test_data_info_shows_pairs(tmp_path, capsys):
    out = tmp_path / "pairs.png"
    assert main(["data", "info", "mnist-mini-edges", "--n", "4", "--out", str(out)]) == 0
    assert "4 pairs, source left of image" in capsys.readouterr().out
    assert Image.open(out).size[0] > Image.open(out).size[1]  # each tile two digits wide

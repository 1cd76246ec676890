"""Paired folders for image-to-image translation: A|B side by side, or A/ and B/ by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import GanforgeError
from ganforge.data import load_dataset, load_paired_folder


def save(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture(scope="module")
def digit_pairs():
    """Pairs derived from real digits: A = the digit's edges, B = the digit (as DATA.md says)."""
    digits = load_dataset("digits").images[:6, 0].numpy()
    edges = np.abs(np.diff(digits.astype(np.int16), axis=-1, prepend=0)).clip(0, 255)
    return edges.astype(np.uint8), digits


def test_side_by_side_pairs_split_in_half(tmp_path, digit_pairs):
    edges, digits = digit_pairs
    for i, (a, b) in enumerate(zip(edges, digits)):
        save(tmp_path / "train" / f"{i}.png", np.concatenate([a, b], axis=1))
    pairs = load_paired_folder(tmp_path, resolution=28, channels=1)
    assert pairs.layout == "side-by-side" and len(pairs) == 6
    assert pairs.images_a.shape == pairs.images_b.shape == (6, 1, 28, 28)
    assert pairs.images_a.dtype == torch.uint8
    assert np.array_equal(pairs.images_a[:, 0].numpy(), edges)
    assert np.array_equal(pairs.images_b[:, 0].numpy(), digits)
    assert pairs.names[0] == "train/0.png"


def test_parallel_folders_match_by_name(tmp_path, digit_pairs):
    edges, digits = digit_pairs
    for i, (a, b) in enumerate(zip(edges, digits)):
        save(tmp_path / "A" / "sub" / f"{i}.png", a)
        save(tmp_path / "B" / "sub" / f"{i}.bmp", b)  # another format: matched by name
    pairs = load_paired_folder(tmp_path, resolution=28, channels=1)
    assert pairs.layout == "folders" and pairs.names == [f"sub/{i}" for i in range(6)]
    assert np.array_equal(pairs.images_a[:, 0].numpy(), edges)
    assert np.array_equal(pairs.images_b[:, 0].numpy(), digits)


def test_mismatches_are_reported_by_name(tmp_path, digit_pairs):
    edges, digits = digit_pairs
    for i in range(3):
        save(tmp_path / "A" / f"{i}.png", edges[i])
        save(tmp_path / "B" / f"{i}.png", digits[i])
    save(tmp_path / "A" / "only-in-a.png", edges[3])
    save(tmp_path / "B" / "only-in-b.png", digits[3])
    with pytest.warns(UserWarning) as caught:
        pairs = load_paired_folder(tmp_path, resolution=16, channels=3)
    text = " ".join(str(w.message) for w in caught)
    assert "only-in-a.png': no file of the same name in B/" in text
    assert "only-in-b.png': no file of the same name in A/" in text
    assert len(pairs) == 3 and pairs.images_a.shape == (3, 3, 16, 16)
    assert len(pairs.skipped) == 2
    with pytest.raises(GanforgeError, match="only-in-a.png"):
        load_paired_folder(tmp_path, strict=True)


def test_unreadable_pairs_and_empty_folders(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning) as caught:
        with pytest.raises(GanforgeError, match="no readable image pairs"):
            load_paired_folder(tmp_path)
    assert "x.png" in str(caught[0].message)
    with pytest.raises(GanforgeError, match="not a folder"):
        load_paired_folder(tmp_path / "nothing")
    with pytest.raises(GanforgeError, match="--layout"):
        load_paired_folder(tmp_path, layout="stacked")


def test_side_by_side_pairs_are_decoded_as_a_viewer_shows_them(tmp_path):
    """A 16-bit A|B pair stored turned (EXIF orientation 3, 180 degrees): upright, 8-bit."""
    pair = np.zeros((4, 8), dtype=np.uint16)
    pair[:, :4] = 257 * 200  # shown left half (A): 200 once scaled to 8 bits
    pair[:, 4:] = 257 * 50
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.fromarray(np.rot90(pair, 2).copy()).save(tmp_path / "pair.png", exif=exif)
    pairs = load_paired_folder(tmp_path, resolution=4, channels=1)
    assert pairs.images_a.unique().tolist() == [200]
    assert pairs.images_b.unique().tolist() == [50]

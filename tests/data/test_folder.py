"""A folder of images as a dataset: class folders, crop and resize, channels, bad files."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import GanforgeError
from ganforge.data import load_dataset
from ganforge.data.folder import (
    DEFAULT_RESOLUTION,
    NAMED_WARNINGS,
    load_image_folder,
    open_image_folder,
)


def write_image(path, size=(20, 20), color=(200, 30, 60), mode="RGB", fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


@pytest.fixture
def class_folder(tmp_path):
    """cats/ (2 PNG), dogs/ (1 JPEG + 1 PNG one level deeper), plus file-manager clutter."""
    root = tmp_path / "pets"
    write_image(root / "cats" / "a.png", color=(255, 0, 0))
    write_image(root / "cats" / "b.png", size=(30, 18), color=(0, 255, 0))
    write_image(root / "dogs" / "c.jpg", size=(25, 25), color=(0, 0, 255))
    write_image(root / "dogs" / "puppies" / "d.PNG", size=(12, 40), color=(10, 10, 10), mode="RGB")
    (root / "dogs" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / ".thumbnails" / "a.png").parent.mkdir()
    (root / ".thumbnails" / "a.png").write_bytes(b"hidden folders are not data")
    (root / "cats" / "Thumbs.db").write_bytes(b"cache")
    return root


def test_class_folders_give_labels(class_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # hidden files and Thumbs.db are ignored silently
        dataset = load_dataset(str(class_folder), resolution=16, channels=3)
    assert len(dataset) == 4
    assert dataset.class_names == ["cats", "dogs"]
    # files are read in sorted path order: cats/a, cats/b, dogs/c, dogs/puppies/d
    assert dataset.labels.tolist() == [0, 0, 1, 1]
    assert dataset.images.shape == (4, 3, 16, 16)
    # colours survive: the first image is red, the second green, the third blue (JPEG: approx.)
    means = dataset.images.float().mean(dim=(2, 3))
    assert means[0].argmax() == 0 and means[1].argmax() == 1 and means[2].argmax() == 2


def test_grayscale_channels(class_folder):
    dataset = load_dataset(str(class_folder), resolution=8, channels=1)
    assert dataset.images.shape == (4, 1, 8, 8)
    # red (255, 0, 0) in luminance
    assert abs(int(dataset.images[0, 0, 4, 4]) - round(0.299 * 255)) <= 1


def test_default_resolution(class_folder):
    dataset = load_image_folder(class_folder, None, None)
    assert dataset.images.shape[-2:] == (DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)
    assert dataset.channels == 3


def test_center_crop_keeps_the_middle(tmp_path):
    # 30x10 image: left third red, middle third green, right third blue -> the square is green
    pixels = np.zeros((10, 30, 3), dtype=np.uint8)
    pixels[:, :10, 0] = 255
    pixels[:, 10:20, 1] = 255
    pixels[:, 20:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    dataset = load_dataset(str(tmp_path), resolution=10, channels=3)
    image = dataset.images[0]
    assert image.shape == (3, 10, 10)
    assert image[1].float().mean() > 240
    assert image[0].float().mean() < 15 and image[2].float().mean() < 15


def test_flat_folder_has_no_labels(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"img{i}.png", color=(i * 40, 0, 0))
    dataset = load_dataset(str(tmp_path), resolution=8, channels=1)
    assert dataset.labels.tolist() == [-1, -1, -1]
    assert dataset.class_names == []


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(GanforgeError) as info:
        load_dataset(str(tmp_path))
    message = str(info.value)
    assert message.startswith("--data:")
    assert str(tmp_path) in message and "no images" in message


def test_unreadable_image_is_skipped_with_a_warning_naming_it(class_folder):
    bad = class_folder / "cats" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.warns(UserWarning) as caught:
        dataset = load_dataset(str(class_folder), resolution=8, channels=1)
    assert len(dataset) == 4
    assert any(str(bad) in str(w.message) for w in caught)
    assert dataset.labels.tolist() == [0, 0, 1, 1]


def test_truncated_image_is_skipped(tmp_path):
    good = write_image(tmp_path / "good.png", size=(32, 32))
    data = good.read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning) as caught:
        dataset = load_dataset(str(tmp_path), resolution=8)
    assert "half.png" in str(caught[0].message)
    assert len(dataset) == 1


def test_unreadable_image_is_an_error_with_strict(class_folder):
    bad = class_folder / "dogs" / "broken.jpg"
    bad.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on this path: it is an error
        with pytest.raises(GanforgeError) as info:
            load_dataset(str(class_folder), resolution=8, strict=True)
    assert str(info.value).startswith("--data:")
    assert str(bad) in str(info.value)


def test_only_unreadable_images_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    with pytest.warns(UserWarning):
        with pytest.raises(GanforgeError, match="no readable images"):
            load_dataset(str(tmp_path), resolution=8)


def test_formats_and_modes(tmp_path):
    write_image(tmp_path / "gray.png", mode="L", color=128)
    write_image(tmp_path / "pal.gif", mode="P", color=3)
    write_image(tmp_path / "rgba.png", mode="RGBA", color=(0, 0, 255, 128))
    write_image(tmp_path / "pic.bmp", color=(1, 2, 3))
    dataset = load_dataset(str(tmp_path), resolution=8, channels=3)
    assert dataset.images.shape == (4, 3, 8, 8)
    # gray 128 becomes three equal planes of 128
    gray = dataset.images[0]  # sorted: gray.png, pal.gif, pic.bmp, rgba.png
    assert gray[:, 4, 4].tolist() == [128, 128, 128]


def test_non_image_files_are_skipped_by_name_and_counted(class_folder):
    notes = class_folder / "dogs" / "notes.txt"
    notes.write_text("not an image")
    broken = class_folder / "cats" / "z.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning) as caught:
        dataset = load_dataset(str(class_folder), resolution=8)
    messages = [str(w.message) for w in caught]
    assert any(str(notes) in m and "not an image file" in m for m in messages)
    assert any(str(broken) in m for m in messages)
    assert messages[-1].startswith("skipped 2 of 6 files under")
    assert len(dataset) == 4
    assert [entry.split(": ")[0] for entry in dataset.skipped] == [str(broken), str(notes)]


def test_strict_stops_at_a_non_image_file(class_folder):
    notes = class_folder / "dogs" / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(GanforgeError, match=f"^--data: .*'{notes}': not an image file"):
        load_dataset(str(class_folder), strict=True)


def test_many_bad_files_are_named_up_to_a_limit_then_counted(tmp_path):
    write_image(tmp_path / "good.png")
    for i in range(NAMED_WARNINGS + 5):
        (tmp_path / f"bad{i:02d}.jpg").write_bytes(b"nope")
    with pytest.warns(UserWarning) as caught:
        dataset = load_dataset(str(tmp_path), resolution=8)
    assert len(caught) == NAMED_WARNINGS + 1
    assert f"skipped {NAMED_WARNINGS + 5} of {NAMED_WARNINGS + 6}" in str(caught[-1].message)
    assert len(dataset.skipped) == NAMED_WARNINGS + 5


def test_webp_jpeg_bmp_and_depth(tmp_path):
    write_image(tmp_path / "a" / "x" / "y" / "z" / "deep.webp", color=(0, 200, 0))
    write_image(tmp_path / "a" / "photo.jpeg", color=(0, 200, 0))
    write_image(tmp_path / "b" / "pic.bmp", color=(0, 0, 200))
    dataset = load_dataset(str(tmp_path), resolution=8, channels=3)
    assert dataset.class_names == ["a", "b"] and dataset.labels.tolist() == [0, 0, 1]
    assert dataset.images[:2, 1].float().mean() > 190  # green survives WebP and JPEG


def test_large_jpegs_are_decoded_at_a_reduced_scale_to_the_same_picture(tmp_path):
    pixels = np.zeros((400, 600, 3), dtype=np.uint8)
    pixels[:, 300:] = 255  # right half white: the center crop is half black, half white
    Image.fromarray(pixels).save(tmp_path / "big.jpg", quality=95)
    image = load_dataset(str(tmp_path), resolution=16, channels=1).images[0, 0].float()
    assert image[:, :7].mean() < 10 and image[:, 9:].mean() > 245


def test_a_streamed_folder_decodes_the_same_pixels(class_folder):
    (class_folder / "dogs" / "bad.png").write_bytes(b"not a png at all")
    with pytest.warns(UserWarning) as caught:
        loaded = load_image_folder(class_folder, 12, 1)
        streamed = open_image_folder(class_folder, 12, 1)
    assert [str(w.message).startswith("skipping '") for w in caught] == [True, False] * 2
    assert len(streamed) == len(loaded) == 4
    assert torch.equal(streamed.labels, loaded.labels)
    assert streamed.skipped == loaded.skipped
    assert torch.equal(streamed.images_at(torch.arange(4)), loaded.images)


def test_a_truncated_image_found_while_streaming_is_an_error_naming_it(tmp_path):
    good = write_image(tmp_path / "a.png", size=(64, 64))
    data = good.read_bytes()
    (tmp_path / "b.png").write_bytes(data[: len(data) - 30])  # the header reads fine
    folder = open_image_folder(tmp_path, 8)
    assert len(folder) == 2
    with pytest.raises(GanforgeError, match="b.png.*--data-cache cpu"):
        folder.images_at(torch.tensor([1]))


def dds_texture(path):
    """A DirectDraw Surface header with no pixel format flags: Pillow recognises the file but
    raises NotImplementedError ("Unknown pixel format flags 0"), not an OSError."""
    header = struct.pack("<7I", 124, 0, 4, 4, 0, 0, 0) + bytes(120 - 24)
    path.write_bytes(b"DDS " + header)
    return path


def test_a_file_pillow_cannot_decode_in_any_way_is_skipped_in_both_paths(tmp_path):
    write_image(tmp_path / "a.png")
    texture = dds_texture(tmp_path / "texture.png")
    for read in (load_image_folder, open_image_folder):
        with pytest.warns(UserWarning) as caught:
            dataset = read(tmp_path, 8, 1)
        assert f"skipping '{texture}': Unknown pixel format flags 0" in str(caught[0].message)
        assert len(dataset) == 1 and dataset.skipped == [f"{texture}: Unknown pixel format flags 0"]
        with pytest.raises(GanforgeError, match="texture.png.*--strict"):
            read(tmp_path, 8, 1, strict=True)


def test_a_file_pillow_cannot_decode_found_while_streaming_is_an_error_naming_it(tmp_path):
    write_image(tmp_path / "a.png")
    folder = open_image_folder(tmp_path, 8)
    dds_texture(tmp_path / "a.png")  # replaced after the scan
    with pytest.raises(GanforgeError, match="a.png': Unknown pixel format"):
        folder.images_at(torch.tensor([0]))


# ---- pixels decoded as a photo viewer shows them, or refused naming the file ----------------


def quadrant_image() -> np.ndarray:
    """16x16 grey: the stored top-left 8x8 quadrant white, the rest black."""
    pixels = np.zeros((16, 16), dtype=np.uint8)
    pixels[:8, :8] = 255
    return pixels


@pytest.mark.parametrize(("suffix", "orientation", "turn"), [(".png", 6, -1), (".jpg", 3, 2)])
def test_exif_orientation_turns_the_image_upright(tmp_path, suffix, orientation, turn):
    stored = quadrant_image()
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: shown turned 90 degrees clockwise; 3: turned 180 degrees
    Image.fromarray(stored).save(tmp_path / f"photo{suffix}", exif=exif, quality=100)
    image = load_image_folder(tmp_path, 16, 1).images[0, 0].numpy().astype(int)
    shown = np.rot90(stored, k=turn).astype(int)  # what a photo viewer displays
    assert np.abs(image - shown).max() <= 8  # JPEG: a few levels of ringing at the edges
    bright = (slice(0, 8), slice(8, 16)) if orientation == 6 else (slice(8, 16), slice(8, 16))
    assert image[bright].mean() > 240  # the white quadrant is where a viewer shows it


def test_a_16_bit_png_is_scaled_to_8_bits_not_saturated(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 257 * 128]] * 4, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "depth.png")
    assert Image.open(tmp_path / "depth.png").mode == "I;16"
    grey = load_image_folder(tmp_path, 4, 1).images[0, 0]
    assert grey[0].tolist() == [0, 100, 255, 128]
    rgb = load_image_folder(tmp_path, 4, 3).images[0]
    assert rgb[:, 0, :].tolist() == [[0, 100, 255, 128]] * 3


def test_a_float_tiff_in_0_1_is_scaled_to_0_255_not_black(tmp_path):
    values = np.array([[0.0, 0.2, 1.0, 0.6]] * 4, dtype=np.float32)
    Image.fromarray(values).save(tmp_path / "float.tif")
    assert Image.open(tmp_path / "float.tif").mode == "F"
    grey = load_image_folder(tmp_path, 4, 1).images[0, 0]
    assert grey[0].tolist() == [0, 51, 255, 153]


@pytest.mark.parametrize(
    ("values", "why"),
    [
        (np.array([[0.0, np.nan]] * 2, dtype=np.float32), "not finite"),
        (np.array([[-5.0, 300.0]] * 2, dtype=np.float32), "range is unknown"),
        (np.array([[0, 70000]] * 2, dtype=np.int32), "32-bit integer pixels"),
    ],
)
def test_pixels_of_unknown_range_are_refused_naming_the_file(tmp_path, values, why):
    Image.fromarray(values).save(tmp_path / "odd.tif")
    with pytest.raises(GanforgeError, match=f"odd.tif'.*{why}") as caught:
        load_image_folder(tmp_path, 2, 1, strict=True)
    assert "\n" not in str(caught.value)


def png_declaring(path, width: int, height: int):
    """A real 1x1 PNG whose header then declares `width` x `height` (CRC fixed): Pillow opens
    it lazily; decoding would fail (or take gigabytes): only a header check refuses it cleanly."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_an_image_over_the_pixel_budget_is_refused_from_its_header(tmp_path):
    write_image(tmp_path / "a.png")
    huge = png_declaring(tmp_path / "huge.png", 9000, 9000)  # 81 MP, under Pillow's own limit
    with pytest.raises(GanforgeError, match="huge.png'.*9000x9000.*limit of 40 megapixels"):
        load_image_folder(tmp_path, 8, 1, strict=True)
    for read in (load_image_folder, open_image_folder):  # skipped, by name, on both paths
        with pytest.warns(UserWarning, match="huge.png'.*limit of 40 megapixels"):
            assert len(read(tmp_path, 8, 1)) == 1
    assert huge.exists()


def test_the_pixel_budget_is_a_setting(tmp_path, monkeypatch):
    write_image(tmp_path / "a.png", size=(10, 10))
    write_image(tmp_path / "b.png", size=(11, 10))
    monkeypatch.setattr("ganforge.data.folder.MAX_IMAGE_PIXELS", 100)
    with pytest.warns(UserWarning, match="b.png'.*11x10"):
        dataset = load_image_folder(tmp_path, 8, 1)
    assert len(dataset) == 1


def test_pillows_decompression_bomb_error_is_one_line_naming_the_file(tmp_path):
    png_declaring(tmp_path / "bomb.png", 20000, 20000)  # 400 MP: Pillow refuses it in open()
    with pytest.raises(GanforgeError, match="bomb.png'.*decompression bomb") as caught:
        load_image_folder(tmp_path, 8, 1, strict=True)
    assert "\n" not in str(caught.value)

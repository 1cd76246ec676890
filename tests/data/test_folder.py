"""A folder of images as a dataset: class folders, crop and resize, channels, bad files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from ganforge import GanforgeError
from ganforge.data import load_dataset
from ganforge.data.folder import DEFAULT_RESOLUTION, load_image_folder


def write_image(path, size=(20, 20), color=(200, 30, 60), mode="RGB", fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


@pytest.fixture
def class_folder(tmp_path):
    """cats/ (2 PNG), dogs/ (1 JPEG + 1 PNG one level deeper), plus a non-image file."""
    root = tmp_path / "pets"
    write_image(root / "cats" / "a.png", color=(255, 0, 0))
    write_image(root / "cats" / "b.png", size=(30, 18), color=(0, 255, 0))
    write_image(root / "dogs" / "c.jpg", size=(25, 25), color=(0, 0, 255))
    write_image(root / "dogs" / "puppies" / "d.PNG", size=(12, 40), color=(10, 10, 10), mode="RGB")
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def test_class_folders_give_labels(class_folder):
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
    with pytest.warns(UserWarning, match="half.png"):
        dataset = load_dataset(str(tmp_path), resolution=8)
    assert len(dataset) == 1


def test_unreadable_image_with_on_bad_image_error(class_folder):
    bad = class_folder / "dogs" / "broken.jpg"
    bad.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on this path: it is an error
        with pytest.raises(GanforgeError) as info:
            load_dataset(str(class_folder), resolution=8, on_bad_image="error")
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

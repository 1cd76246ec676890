"""Bundled datasets (mnist-mini, digits), the registry, shape conversion and value ranges."""

from __future__ import annotations

import pytest
import torch

from ganforge import GanforgeError
from ganforge import data as data_module
from ganforge.data import (
    ImageDataset,
    list_datasets,
    load_dataset,
    register_dataset,
    to_model_range,
    to_uint8,
)


@pytest.fixture(scope="module")
def mnist_mini():
    return load_dataset("mnist-mini")


def test_list_datasets():
    names = list_datasets()
    assert {"digits", "mnist-mini"} <= set(names)
    assert names == sorted(names)


def test_mnist_mini_is_5000_real_digits_500_per_class(mnist_mini):
    assert len(mnist_mini) == 5000
    assert mnist_mini.images.shape == (5000, 1, 28, 28)
    assert mnist_mini.images.dtype == torch.uint8
    assert (mnist_mini.resolution, mnist_mini.channels) == (28, 1)
    assert mnist_mini.labels.dtype == torch.int64
    assert torch.bincount(mnist_mini.labels, minlength=10).tolist() == [500] * 10
    assert mnist_mini.num_classes == 10
    assert mnist_mini.class_names == [str(d) for d in range(10)]
    # real handwriting: dark background, bright strokes, using the whole 0-255 range
    assert mnist_mini.images.max() == 255
    assert mnist_mini.images[:, :, 0, :].float().mean() < 5
    assert 20 < mnist_mini.images.float().mean() < 60
    # images are distinct, not one repeated picture
    assert not torch.equal(mnist_mini.images[0], mnist_mini.images[1])


def test_digits_is_1797_images_at_28px(digits):
    assert len(digits) == 1797
    assert digits.images.shape == (1797, 1, 28, 28)
    assert digits.images.dtype == torch.uint8
    assert sorted(torch.unique(digits.labels).tolist()) == list(range(10))
    assert digits.num_classes == 10
    assert digits.images.max() > 200
    # the one-pixel margin: the border stays (almost) black
    border = torch.cat(
        [
            digits.images[..., 0, :],
            digits.images[..., -1, :],
            digits.images[..., :, 0],
            digits.images[..., :, -1],
        ],
        dim=-1,
    )
    assert border.float().mean() < 10


def test_datasets_are_deterministic(digits):
    again = load_dataset("digits")
    assert torch.equal(again.images, digits.images)
    assert torch.equal(again.labels, digits.labels)


@pytest.mark.parametrize(("resolution", "channels"), [(32, 1), (64, 3), (16, 3), (28, 3)])
def test_load_dataset_converts_shape(digits, resolution, channels):
    converted = load_dataset("digits", resolution=resolution, channels=channels)
    assert converted.images.shape == (1797, channels, resolution, resolution)
    assert converted.images.dtype == torch.uint8
    assert torch.equal(converted.labels, digits.labels)
    if channels == 3:
        # gray to RGB: three equal planes
        assert torch.equal(converted.images[:, 0], converted.images[:, 1])
        assert torch.equal(converted.images[:, 0], converted.images[:, 2])
    # resizing keeps the picture: mean brightness is nearly unchanged
    assert converted.images.float().mean().item() == pytest.approx(
        digits.images.float().mean().item(), rel=0.1
    )


def test_to_shape_without_changes_returns_the_same_dataset(digits):
    assert digits.to_shape(None, None) is digits
    assert digits.to_shape(28, 1) is digits


def test_rgb_to_gray_uses_luminance_weights():
    images = torch.zeros(3, 3, 4, 4, dtype=torch.uint8)
    images[0, 0] = 255  # red
    images[1, 1] = 255  # green
    images[2, 2] = 255  # blue
    dataset = ImageDataset(images, torch.full((3,), -1), "rgb", [])
    gray = dataset.to_shape(None, 1).images
    assert gray.shape == (3, 1, 4, 4)
    values = gray[:, 0, 0, 0].tolist()
    assert values == [round(255 * 0.299), round(255 * 0.587), round(255 * 0.114)]


def test_model_range_round_trip():
    every = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    scaled = to_model_range(every)
    assert scaled.dtype == torch.float32
    assert scaled.min().item() == -1.0 and scaled.max().item() == 1.0
    assert torch.equal(to_uint8(scaled), every)
    # to_uint8 clamps values outside [-1, 1]
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]


def test_unknown_dataset_lists_the_choices(tmp_path):
    with pytest.raises(GanforgeError) as info:
        load_dataset(str(tmp_path / "no-such-data"))
    message = str(info.value)
    assert message.startswith("--data:")
    assert "no-such-data" in message
    for name in list_datasets():
        assert name in message


def test_a_file_is_not_a_dataset(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"not really")
    with pytest.raises(GanforgeError, match="^--data: .*is a file"):
        load_dataset(str(path))


def test_register_dataset(monkeypatch):
    monkeypatch.setattr(data_module, "_DATASETS", dict(data_module._DATASETS))
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    register_dataset("tiny", lambda options: ImageDataset(images, torch.arange(6), "tiny", ["a"]))
    assert "tiny" in list_datasets()
    dataset = load_dataset("tiny", resolution=4, channels=3)
    assert dataset.images.shape == (6, 3, 4, 4)


def test_resizing_goes_by_chunks_and_equals_one_resize_of_the_whole(digits, monkeypatch):
    from ganforge.data import dataset as dataset_module

    monkeypatch.setattr(dataset_module, "_RESIZE_CHUNK", 100)  # 1,797 images: 18 chunks
    resized = digits.to_shape(32, None).images
    whole = torch.nn.functional.interpolate(
        digits.images.float(), size=(32, 32), mode="bilinear", antialias=True, align_corners=False
    )
    assert resized.dtype == torch.uint8
    assert torch.equal(resized, whole.round().clamp(0, 255).to(torch.uint8))


def test_a_resolution_that_would_not_fit_in_memory_is_refused_before_resizing(digits, monkeypatch):
    from ganforge.data import dataset as dataset_module

    # at 1024 px the 1,797 digits would take 1.8 GiB: over a bound of 1 GiB
    monkeypatch.setattr(dataset_module, "MAX_DATASET_BYTES", 2**30)
    monkeypatch.setattr(dataset_module.F, "interpolate", None)  # never reached
    with pytest.raises(GanforgeError, match=r"^--resolution: 1,797 images of 1 x 1024 x 1024"):
        digits.to_shape(1024, None)

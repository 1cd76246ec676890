"""MNIST-family datasets from official-format IDX files: the reader, the data root and system
location, and the error that says which files to place where."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import GanforgeError
from ganforge.data import idx, load_dataset, roots
from ganforge.data.idx import parse_idx, read_idx, write_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", ["u1", ">i4", ">f4"])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.dtype(dtype).newbyteorder("="))
    path = tmp_path / f"x-idx3{suffix}"
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = read_idx(path)
    assert back.shape == (2, 3, 4) and np.array_equal(back, array)


def test_idx_header_is_the_official_one(tmp_path):
    write_idx(tmp_path / "labels", np.array([7, 2, 1], dtype=np.uint8))
    assert (tmp_path / "labels").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x00\x00\x08", "bad magic"),
        (b"PK\x03\x04rest", "bad magic"),
        (bytes([0, 0, 8, 2, 0, 0, 0, 2]), "cut short"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), "needs 13 bytes"),
    ],
)
def test_broken_idx_data_is_named(raw, words):
    with pytest.raises(GanforgeError, match=words) as info:
        parse_idx(raw, "some-file")
    assert "some-file" in str(info.value)


def test_corrupt_gzip_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 1, 5]))[:-6])
    with pytest.raises(GanforgeError, match=str(path)):
        read_idx(path)


def test_mnist_from_the_data_root(data_root, write_mnist):
    images, labels = write_mnist(data_root / "mnist", n=50)
    dataset = load_dataset("mnist")
    assert dataset.images.shape == (50, 1, 28, 28) and dataset.images.dtype == torch.uint8
    assert np.array_equal(dataset.images[:, 0].numpy(), images)
    assert dataset.labels.tolist() == labels.tolist()
    assert dataset.class_names == [str(d) for d in range(10)]
    assert dataset.location == str(data_root / "mnist")


def test_ungzipped_files_the_test_split_and_an_explicit_root(tmp_path, write_mnist):
    root = tmp_path / "elsewhere"
    write_mnist(root / "kmnist", n=30, split="test", gz=False, seed=3)
    dataset = load_dataset("kmnist", data_root=str(root), split="test")
    assert len(dataset) == 30
    assert dataset.class_names[:3] == ["o", "ki", "su"]
    with pytest.raises(GanforgeError, match="train-images-idx3-ubyte.gz"):
        load_dataset("kmnist", data_root=str(root))  # train split files are not there


def test_the_data_root_comes_before_the_system_location(data_root, tmp_path, write_mnist):
    write_mnist(tmp_path / "system" / "fashion-mnist", n=20)
    assert len(load_dataset("fashion-mnist")) == 20
    assert load_dataset("fashion-mnist").class_names[0] == "T-shirt/top"
    write_mnist(data_root / "fashion-mnist", n=40)
    assert len(load_dataset("fashion-mnist")) == 40


def test_resize_and_rgb(data_root, write_mnist):
    write_mnist(data_root / "mnist", n=12)
    dataset = load_dataset("mnist", resolution=32, channels=3)
    assert dataset.images.shape == (12, 3, 32, 32)


def test_missing_files_say_which_files_go_where(data_root):
    with pytest.raises(GanforgeError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert message.startswith("--data mnist: missing ")
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert str(data_root / "mnist") in message
    assert "GANFORGE_OFFLINE" in message and "\n" not in message


def test_mismatched_labels_are_an_error(data_root, write_mnist):
    write_mnist(data_root / "mnist", n=10)
    write_idx(data_root / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(9, dtype=np.uint8))
    with pytest.raises(GanforgeError, match="9 labels for 10 images"):
        load_dataset("mnist")


def test_labels_outside_the_classes_are_an_error(data_root, write_mnist):
    write_mnist(data_root / "mnist", n=10)
    write_idx(data_root / "mnist" / "train-labels-idx1-ubyte.gz", np.full(10, 12, np.uint8))
    with pytest.raises(GanforgeError, match="label 12"):
        load_dataset("mnist")


def test_negative_labels_are_an_error(data_root, write_mnist):
    write_mnist(data_root / "mnist", n=10)
    write_idx(data_root / "mnist" / "train-labels-idx1-ubyte.gz", np.full(10, -1, np.int8))
    with pytest.raises(GanforgeError, match="label -1 is outside the 10 classes"):
        load_dataset("mnist")


@pytest.mark.parametrize("value", [np.nan, np.inf, 3.0])
def test_float_labels_are_an_error_naming_the_file(data_root, write_mnist, value):
    write_mnist(data_root / "mnist", n=10)
    labels = data_root / "mnist" / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.full(10, value, np.float32))
    with pytest.raises(GanforgeError, match="expected integer labels, got float32") as info:
        load_dataset("mnist")
    assert str(labels) in str(info.value)


@pytest.mark.parametrize("shape", [(1, 28, 0), (1, 0, 28), (0, 28, 28), (2, 3, 40)])
def test_empty_or_oblong_images_are_an_error_naming_the_file(data_root, write_mnist, shape):
    write_mnist(data_root / "mnist", n=shape[0])
    images = data_root / "mnist" / "train-images-idx3-ubyte.gz"
    write_idx(images, np.zeros(shape, np.uint8))
    with pytest.raises(GanforgeError, match="expected one or more square images") as info:
        load_dataset("mnist", resolution=16)
    assert str(images) in str(info.value)


def test_huge_declared_sizes_are_refused_without_allocating():
    dims = (0xFFFFFFFF,) * 3  # the product overflows int64: compared as a Python int
    raw = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims) + b"\0" * 8
    with pytest.raises(GanforgeError, match="needs .* bytes, the file has 24") as info:
        parse_idx(raw, "some-file")
    assert "some-file" in str(info.value)


def test_a_gzip_bomb_is_read_only_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 1 << 16)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 1, 0, 0]) + b"\0" * (1 << 20)))
    with pytest.raises(GanforgeError, match="over 0 GiB of IDX data") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_from_the_system_location(monkeypatch):
    monkeypatch.setattr(roots, "SYSTEM_DATA_DIRS", (DEBIAN_FASHION.parent,))
    train = load_dataset("fashion-mnist")
    assert train.images.shape == (60000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert train.location == str(DEBIAN_FASHION)
    # the published pixel mean of Fashion-MNIST's training set is 0.2860 (x 255 = 72.9)
    assert train.images.float().mean().item() == pytest.approx(72.94, abs=0.05)
    test = load_dataset("fashion-mnist", split="test")
    assert len(test) == 10000 and torch.bincount(test.labels).tolist() == [1000] * 10

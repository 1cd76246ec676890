"""CIFAR-10/100 from the official binary version (archive or extracted folder); the pickled
python version only with --trust-pickle."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from ganforge import GanforgeError
from ganforge.data import cifar, load_dataset
from ganforge.data.cifar import CIFAR10_CLASSES


@pytest.mark.parametrize("archive", [True, False])
def test_cifar10_binary(data_root, write_cifar, archive):
    images, labels = write_cifar(data_root / "cifar10", archive=archive)
    dataset = load_dataset("cifar10")
    assert dataset.images.shape == (20, 3, 32, 32) and dataset.images.dtype == torch.uint8
    assert np.array_equal(dataset.images.numpy(), images)  # R, G, B planes in record order
    assert dataset.labels.tolist() == labels.tolist()
    assert dataset.class_names == list(CIFAR10_CLASSES)
    test = load_dataset("cifar10", split="test")
    assert len(test) == 4


def test_cifar100_uses_the_fine_labels(data_root, write_cifar):
    images, labels = write_cifar(data_root / "cifar100", variant="cifar100")
    dataset = load_dataset("cifar100", resolution=16, channels=1)
    assert dataset.images.shape == (20, 1, 16, 16)
    assert dataset.labels.tolist() == labels.tolist()
    assert labels.max() > 20  # fine (0-99), not coarse (0-19), labels
    assert dataset.num_classes == 100 and dataset.class_names[7] == "fine7"


def test_a_batch_that_is_not_whole_records_is_named(data_root, write_cifar):
    write_cifar(data_root / "cifar10", archive=False)
    batch = data_root / "cifar10" / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-5])
    with pytest.raises(GanforgeError, match="data_batch_3.bin.*not a whole number"):
        load_dataset("cifar10")


def test_an_archive_without_the_batches_is_named(data_root, make_tar_gz):
    folder = data_root / "cifar10"
    folder.mkdir(parents=True)
    (folder / "cifar-10-binary.tar.gz").write_bytes(make_tar_gz("other", {"x.bin": b"1"}))
    with pytest.raises(GanforgeError, match="lacks data_batch_1.bin"):
        load_dataset("cifar10")


def test_missing_cifar_names_the_binary_archive(data_root):
    with pytest.raises(GanforgeError) as info:
        load_dataset("cifar100")
    assert "cifar-100-binary.tar.gz" in str(info.value)
    assert str(data_root / "cifar100") in str(info.value)


@pytest.fixture
def pickled_cifar10(data_root, make_cifar_records):
    """The python version's layout: cifar-10-batches-py/ with pickled dicts (written here)."""
    folder = data_root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    _, images, labels = make_cifar_records(5, 1, 10, seed=1)
    for i in range(1, 6):
        batch = {b"data": images.reshape(5, -1), b"labels": labels.tolist()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [name.encode() for name in CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder, np.concatenate([images] * 5), np.concatenate([labels] * 5)


def test_the_pickled_version_is_refused_without_trust_pickle(pickled_cifar10, monkeypatch):
    def no_unpickling(*args, **kwargs):
        raise AssertionError("unpickled without --trust-pickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    with pytest.raises(GanforgeError) as info:
        load_dataset("cifar10")
    message = str(info.value)
    assert "--trust-pickle" in message and "cifar-10-binary.tar.gz" in message
    assert str(pickled_cifar10[0]) in message


def test_the_pickled_version_with_trust_pickle(pickled_cifar10):
    _, images, labels = pickled_cifar10
    dataset = load_dataset("cifar10", trust_pickle=True)
    assert np.array_equal(dataset.images.numpy(), images)
    assert dataset.labels.tolist() == labels.tolist()
    assert dataset.class_names[0] == "airplane"


def test_the_binary_version_wins_over_the_pickled_one(pickled_cifar10, data_root, write_cifar):
    images, _ = write_cifar(data_root / "cifar10")
    assert np.array_equal(load_dataset("cifar10").images.numpy(), images)


@pytest.mark.parametrize("data", [b"", b"not an archive at all" * 40])
def test_an_empty_or_foreign_archive_is_one_short_error(data_root, data):
    folder = data_root / "cifar10"
    folder.mkdir(parents=True)
    archive = folder / "cifar-10-binary.tar.gz"
    archive.write_bytes(data)
    with pytest.raises(GanforgeError) as info:
        load_dataset("cifar10")
    assert str(info.value) == f"'{archive}' is not a readable tar archive"


def test_a_truncated_archive_is_named(data_root, write_cifar):
    write_cifar(data_root / "cifar10")
    archive = data_root / "cifar10" / "cifar-10-binary.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(GanforgeError, match="is a damaged tar archive") as info:
        load_dataset("cifar10")
    assert str(archive) in str(info.value) and "\n" not in str(info.value)


def test_class_names_that_are_not_utf8_are_decoded_with_replacement(data_root, write_cifar):
    write_cifar(data_root / "cifar10", archive=False)
    names = data_root / "cifar10" / "cifar-10-batches-bin" / "batches.meta.txt"
    names.write_bytes(b"\xffirplane" + names.read_bytes()[len(b"airplane") :])
    dataset = load_dataset("cifar10")
    assert dataset.class_names[0] == "\ufffdirplane"
    assert dataset.class_names[1:] == list(CIFAR10_CLASSES[1:])


@pytest.mark.parametrize("archive", [True, False])
def test_a_member_larger_than_any_batch_is_refused_before_reading(
    data_root, write_cifar, monkeypatch, archive
):
    write_cifar(data_root / "cifar10", archive=archive)
    monkeypatch.setattr(cifar, "MAX_BATCH_BYTES", 1000)  # the batches here are 4 x 3073 bytes
    with pytest.raises(GanforgeError, match="data_batch_1.bin' is 12292 bytes, larger than any"):
        load_dataset("cifar10")

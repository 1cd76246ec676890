"""CIFAR-10 and CIFAR-100 (32x32 RGB) from the official *binary* version, which needs no pickle.

ROOT/cifar10/cifar-10-binary.tar.gz (read in place, nothing is extracted) or its extracted
cifar-10-batches-bin/; ROOT/cifar100/cifar-100-binary.tar.gz or cifar-100-binary/.
Binary layout (Krizhevsky's CIFAR page): fixed records of label byte(s) then 3072 pixel bytes,
the red, green and blue 32x32 planes in turn. CIFAR-100 records hold a coarse then a fine label;
ganforge uses the 100 fine classes.

The python version (cifar-10-python.tar.gz) is pickled: unpickling runs code from the file, so
it is read only when the user passes --trust-pickle.
"""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.data.dataset import ImageDataset
from ganforge.data.download import DataFile, ensure_files, locate_files, mirrors_for
from ganforge.data.roots import dataset_dirs
from ganforge.errors import GanforgeError

PIXELS = 3 * 32 * 32
MAX_BATCH_BYTES = 256 << 20  # CIFAR-100's train.bin, the largest batch file, is 154 MB
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class CifarDataset:
    """Where one CIFAR variant's files are and how its records are laid out."""

    name: str
    num_classes: int
    label_bytes: int  # 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
    archive: DataFile  # the binary version, as published
    binary_dir: str  # the folder the binary archive holds
    batches: dict[str, tuple[str, ...]]  # split -> binary batch files
    names_file: str  # class names, one per line
    pickle_archive: str
    pickle_dir: str
    pickle_batches: dict[str, tuple[str, ...]]
    pickle_meta: tuple[str, str]  # (meta file, key of the class names)
    pickle_labels: str

    @property
    def binary(self) -> DataFile:
        archive = self.archive
        return DataFile(
            archive.filename, archive.md5, local_names=(self.binary_dir,), size=archive.size
        )


CIFAR10 = CifarDataset(
    name="cifar10",
    num_classes=10,
    label_bytes=1,
    archive=DataFile(
        "cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", size=170_052_171
    ),
    binary_dir="cifar-10-batches-bin",
    batches={
        "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        "test": ("test_batch.bin",),
    },
    names_file="batches.meta.txt",
    pickle_archive="cifar-10-python.tar.gz",
    pickle_dir="cifar-10-batches-py",
    pickle_batches={
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
    },
    pickle_meta=("batches.meta", "label_names"),
    pickle_labels="labels",
)
CIFAR100 = CifarDataset(
    name="cifar100",
    num_classes=100,
    label_bytes=2,
    archive=DataFile(
        "cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8", size=168_513_733
    ),
    binary_dir="cifar-100-binary",
    batches={"train": ("train.bin",), "test": ("test.bin",)},
    names_file="fine_label_names.txt",
    pickle_archive="cifar-100-python.tar.gz",
    pickle_dir="cifar-100-python",
    pickle_batches={"train": ("train",), "test": ("test",)},
    pickle_meta=("meta", "fine_label_names"),
    pickle_labels="fine_labels",
)
CIFAR_DATASETS = {spec.name: spec for spec in (CIFAR10, CIFAR100)}
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)


def load_cifar(
    spec: CifarDataset,
    root: str | Path | None = None,
    split: str = "train",
    *,
    trust_pickle: bool = False,
    download: bool = True,
    progress: bool = True,
) -> ImageDataset:
    """The `split` of CIFAR-10/100 as uint8 (N, 3, 32, 32) images with (fine) labels."""
    if split not in spec.batches:
        raise GanforgeError(f"--data {spec.name}: split '{split}' is not one of train, test")
    found = locate_files(spec.name, [spec.binary], root)
    if found is None:
        pickled = _find_pickle_version(spec, root)
        if pickled is not None:
            if not trust_pickle:
                raise GanforgeError(
                    f"--data {spec.name}: '{pickled}' is the pickled python version; unpickling "
                    f"can run code from the file, so ganforge reads the binary version: place "
                    f"{spec.archive.filename} in '{pickled.parent}/', or pass --trust-pickle"
                )
            return _read_pickle_version(spec, pickled, split)
        found = ensure_files(
            spec.name,
            [spec.binary],
            mirrors_for(spec.name, MIRRORS),
            root,
            download=download,
            progress=progress,
        )
    return read_cifar_binary(spec, found[0], split)


def read_cifar_binary(spec: CifarDataset, path: Path, split: str = "train") -> ImageDataset:
    """Read the binary batches of `split` from the archive or the extracted folder at `path`."""
    wanted = [*spec.batches[split], spec.names_file]
    members = _read_members(path, spec.binary_dir, wanted)
    missing = [name for name in spec.batches[split] if name not in members]
    if missing:
        raise GanforgeError(f"'{path}' lacks {', '.join(missing)}: is it {spec.archive.filename}?")
    parts = [_parse_records(members[name], spec, f"{path}:{name}") for name in spec.batches[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    names = _class_names(members.get(spec.names_file), spec)
    return _dataset(spec, images, labels, names, path)


def _read_members(path: Path, folder: str, wanted: list[str]) -> dict[str, bytes]:
    """The bytes of the `wanted` files of an archive (read in one pass) or extracted folder."""
    if path.is_dir():
        files = [(name, path / name) for name in wanted if (path / name).is_file()]
        for name, file in files:
            _check_member_size(file.stat().st_size, f"{path}:{name}")
        return {name: file.read_bytes() for name, file in files}
    try:
        archive = tarfile.open(path, "r:*")
    except (OSError, EOFError, zlib.error, tarfile.TarError):
        raise GanforgeError(f"'{path}' is not a readable tar archive") from None
    members: dict[str, bytes] = {}
    try:
        with archive:
            for member in archive:
                name = member.name.removeprefix(f"{folder}/")
                if member.isfile() and name in wanted:
                    _check_member_size(member.size, f"{path}:{name}")
                    members[name] = archive.extractfile(member).read()  # type: ignore[union-attr]
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GanforgeError(f"'{path}' is a damaged tar archive: {reason}") from None
    return members


def _check_member_size(size: int, name: str) -> None:
    """Refuse a file far larger than any CIFAR batch before reading it into memory (a small
    compressed archive can declare, and hold, gigabytes of zeros)."""
    if size > MAX_BATCH_BYTES:
        raise GanforgeError(
            f"'{name}' is {size} bytes, larger than any CIFAR batch file "
            f"({MAX_BATCH_BYTES >> 20} MiB at most)"
        )


def _parse_records(raw: bytes, spec: CifarDataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    record = spec.label_bytes + PIXELS
    if not raw or len(raw) % record:
        raise GanforgeError(
            f"'{name}': {len(raw)} bytes is not a whole number of {record}-byte CIFAR records"
        )
    table = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
    labels = table[:, spec.label_bytes - 1].astype(np.int64)
    if labels.max() >= spec.num_classes:
        raise GanforgeError(f"'{name}': label {labels.max()} is outside {spec.num_classes} classes")
    return table[:, spec.label_bytes :].reshape(-1, 3, 32, 32), labels


def _class_names(raw: bytes | None, spec: CifarDataset) -> list[str]:
    # only display names: a damaged byte shows as U+FFFD rather than stopping the load
    text = (raw or b"").decode("utf-8", errors="replace")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) == spec.num_classes:
        return names
    if spec.num_classes == len(CIFAR10_CLASSES):
        return list(CIFAR10_CLASSES)
    return [str(i) for i in range(spec.num_classes)]


def _dataset(
    spec: CifarDataset, images: np.ndarray, labels: np.ndarray, names: list[str], path: Path
) -> ImageDataset:
    return ImageDataset(
        torch.from_numpy(np.ascontiguousarray(images)),
        torch.from_numpy(labels),
        spec.name,
        names,
        location=str(path),
    )


# ---- the pickled python version: only with --trust-pickle --------------------------------------


def _find_pickle_version(spec: CifarDataset, root: str | Path | None) -> Path | None:
    for folder in dataset_dirs(spec.name, root):
        for name in (spec.pickle_archive, spec.pickle_dir):
            if (folder / name).exists():
                return folder / name
    return None


def _read_pickle_version(spec: CifarDataset, path: Path, split: str) -> ImageDataset:
    """Unpickle the python version. Only called when the user passed --trust-pickle."""
    import pickle

    meta_file, names_key = spec.pickle_meta
    wanted = [*spec.pickle_batches[split], meta_file]
    members = _read_members(path, spec.pickle_dir, wanted)
    images, labels = [], []
    try:
        for name in spec.pickle_batches[split]:
            batch = pickle.loads(members[name], encoding="bytes")
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[spec.pickle_labels.encode()], dtype=np.int64))
            if labels[-1].shape != images[-1].shape[:1]:
                raise ValueError(f"{name}: {labels[-1].size} labels for {len(images[-1])} images")
        meta = pickle.loads(members[meta_file], encoding="bytes") if meta_file in members else {}
        names = [n.decode("utf-8", errors="replace") for n in meta.get(names_key.encode(), [])]
    except Exception as exc:  # a damaged pickle can raise any type at all
        raise GanforgeError(f"'{path}': not the CIFAR python version ({exc!r})") from None
    all_labels = np.concatenate(labels)
    if all_labels.size and not 0 <= all_labels.min() <= all_labels.max() < spec.num_classes:
        raise GanforgeError(f"'{path}': a label is outside {spec.num_classes} classes")
    names = names if len(names) == spec.num_classes else _class_names(None, spec)
    return _dataset(spec, np.concatenate(images), all_labels, names, path)

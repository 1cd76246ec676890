"""MNIST, Fashion-MNIST and KMNIST: 28x28 grayscale images in the official IDX files.

ROOT/mnist/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz (t10k-* for the test split);
the same names under ROOT/fashion-mnist/ and ROOT/kmnist/. Un-gzipped copies are read too.
Checksums are the published MD5s of the .gz files (torchvision lists the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganforge.data.dataset import ImageDataset
from ganforge.data.download import DataFile, ensure_files, mirrors_for
from ganforge.data.idx import read_idx
from ganforge.errors import GanforgeError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class IdxDataset:
    """An MNIST-like dataset: its folder name, mirrors, files (by split) and class names."""

    name: str
    mirrors: tuple[str, ...]
    md5s: dict[str, str]  # official .gz file name -> published MD5
    class_names: tuple[str, ...]
    sizes: dict[str, int] = field(default_factory=dict)  # .gz file name -> published bytes

    def files(self, split: str) -> list[DataFile]:
        prefix = {"train": "train", "test": "t10k"}[split]
        names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
        return [
            DataFile(n, self.md5s[n], local_names=(n.removesuffix(".gz"),), size=self.sizes.get(n))
            for n in names
        ]


MNIST = IdxDataset(
    "mnist",
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    tuple(str(d) for d in range(10)),
    sizes={
        "train-images-idx3-ubyte.gz": 9_912_422,
        "train-labels-idx1-ubyte.gz": 28_881,
        "t10k-images-idx3-ubyte.gz": 1_648_877,
        "t10k-labels-idx1-ubyte.gz": 4_542,
    },
)
FASHION_MNIST = IdxDataset(
    "fashion-mnist",
    (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "https://fashion-mnist.s3.eu-central-1.amazonaws.com/",  # the S3 website's bucket, https
    ),
    {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    sizes={
        "train-images-idx3-ubyte.gz": 26_421_880,
        "train-labels-idx1-ubyte.gz": 29_515,
        "t10k-images-idx3-ubyte.gz": 4_422_102,
        "t10k-labels-idx1-ubyte.gz": 5_148,
    },
)
KMNIST = IdxDataset(
    "kmnist",
    ("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    },
    ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    sizes={
        "train-images-idx3-ubyte.gz": 18_165_135,
        "train-labels-idx1-ubyte.gz": 29_497,
        "t10k-images-idx3-ubyte.gz": 3_041_136,
        "t10k-labels-idx1-ubyte.gz": 5_120,
    },
)
IDX_DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST, KMNIST)}


def load_idx_dataset(
    spec: IdxDataset,
    root: str | Path | None = None,
    split: str = "train",
    *,
    download: bool = True,
    progress: bool = True,
) -> ImageDataset:
    """The `split` of an MNIST-like dataset as uint8 (N, 1, 28, 28) images with labels."""
    if split not in SPLITS:
        raise GanforgeError(f"--data {spec.name}: split '{split}' is not one of train, test")
    images_file, labels_file = ensure_files(
        spec.name,
        spec.files(split),
        mirrors_for(spec.name, spec.mirrors),
        root,
        download=download,
        progress=progress,
    )
    return idx_pair_dataset(images_file, labels_file, spec.name, list(spec.class_names))


def idx_pair_dataset(
    images_file: Path, labels_file: Path, name: str, class_names: list[str]
) -> ImageDataset:
    """An images IDX file (N, H, W) and its labels IDX file (N,) as one dataset."""
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise GanforgeError(
            f"'{images_file}': expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    count, height, width = images.shape
    if count == 0 or height == 0 or height != width:
        raise GanforgeError(
            f"'{images_file}': expected one or more square images, got {count} of "
            f"{height}x{width} pixels"
        )
    if labels.shape != images.shape[:1]:
        raise GanforgeError(
            f"'{labels_file}': {labels.shape[0] if labels.ndim else 0} labels for "
            f"{images.shape[0]} images in '{images_file}'"
        )
    if labels.dtype.kind not in "iu":
        raise GanforgeError(f"'{labels_file}': expected integer labels, got {labels.dtype}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= len(class_names):
        raise GanforgeError(
            f"'{labels_file}': label {low if low < 0 else high} is outside the "
            f"{len(class_names)} classes of {name}"
        )
    return ImageDataset(
        torch.from_numpy(images[:, None].copy()),
        torch.from_numpy(labels.astype(np.int64)),
        name,
        class_names,
        location=str(images_file.parent),
    )

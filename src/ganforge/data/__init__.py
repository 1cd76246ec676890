"""Datasets by name (a registry: bundled, MNIST-family IDX files, CIFAR) or a folder path.

Named datasets and small folders are decoded once into an ImageDataset (one uint8 tensor);
folders too large for memory open as an ImageFolder that is decoded batch by batch.

A dataset has a layout: single images ("images", labelled or not), or the two sides of an
image-to-image translation, as an ImageDataset whose `sources` are side A and `images` side B:
aligned ("paired": registered paired datasets, folders of pairs) or not ("unpaired"). The
layout a model needs follows from its kind (`layout_for`); readers of layouts other than
single images are registered (`register_layout`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganforge.data.bundled import load_digits, load_mnist_mini
from ganforge.data.cifar import CIFAR_DATASETS, load_cifar
from ganforge.data.dataset import ImageDataset, to_model_range, to_uint8
from ganforge.data.digit_pairs import TASKS as DIGIT_PAIR_TASKS
from ganforge.data.digit_pairs import load_digit_pairs
from ganforge.data.folder import (
    ImageFolder,
    load_image_folder,
    open_image_folder,
    scan_image_folder,
)
from ganforge.data.mnist import IDX_DATASETS, load_idx_dataset
from ganforge.data.paired import PairedDataset, load_paired_folder
from ganforge.data.pipeline import CACHES, RealBatches
from ganforge.data.points import (
    POINT_DATASETS,
    PointSet,
    is_point_data,
    load_point_csv,
    load_point_dataset,
)
from ganforge.data.roots import data_root
from ganforge.data.stacked_mnist import NAME as STACKED_MNIST
from ganforge.data.stacked_mnist import load_stacked_mnist
from ganforge.data.unpaired import load_unpaired_digits, open_unpaired_folder
from ganforge.errors import GanforgeError

# Folders whose decoded images would take more than this are streamed under --data-cache auto.
MEMORY_BUDGET_BYTES = 2 * 2**30


@dataclass(frozen=True)
class LoadOptions:
    """What a registered loader may need: where files are, which split, what it may do."""

    data_root: str | Path | None = None
    split: str = "train"
    trust_pickle: bool = False
    download: bool = True
    progress: bool = False


Loader = Callable[[LoadOptions], ImageDataset]
# opens a dataset of a layout by name or path: (name, resolution, channels, strict, options,
# cache) -> an ImageDataset with `sources`
LayoutOpener = Callable[..., ImageDataset]
_DATASETS: dict[str, Loader] = {}
_LAYOUTS: dict[str, str] = {}  # dataset name -> its layout
_OPENERS: dict[str, LayoutOpener] = {}  # layout -> its reader of folders and registered names
IMAGES = "images"
POINTS = "points"  # points (N, D) for a model of points (data/points.py)


def register_dataset(name: str, loader: Loader, layout: str = IMAGES) -> None:
    """Make `--data NAME` load `loader(options)`: uint8 images in the dataset's own shape;
    for a translation layout ("paired", "unpaired"), with side A as `sources`."""
    _DATASETS[name] = loader
    _LAYOUTS[name] = layout


def register_layout(layout: str, opener: LayoutOpener) -> None:
    """Open `--data` for models that need `layout` with `opener` (see LayoutOpener)."""
    _OPENERS[layout] = opener


def layout_for(data_kind: str) -> str:
    """The layout of the data a model of this data kind (models.family.DATA_KINDS) trains on:
    a translator's pairs, aligned or not; points; single images otherwise."""
    return data_kind if data_kind in ("paired", "unpaired", POINTS) else IMAGES


def list_datasets(layout: str | None = None) -> list[str]:
    """Registered names: all, or those of `layout` ("images", "paired", "unpaired",
    "points")."""
    return sorted(n for n in _DATASETS if layout is None or _LAYOUTS[n] == layout)


def load_dataset(
    name: str,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    strict: bool = False,
    data_root: str | Path | None = None,
    trust_pickle: bool = False,
    split: str = "train",
    download: bool = True,
    progress: bool = False,
) -> ImageDataset:
    """A dataset by registered name or folder path, decoded, at `resolution` and `channels`."""
    options = LoadOptions(data_root, split, trust_pickle, download, progress)
    dataset = open_dataset(
        name, resolution=resolution, channels=channels, strict=strict, options=options, cache="cpu"
    )
    assert isinstance(dataset, ImageDataset)
    return dataset


def load_points(name: str, data_root: str | Path | None = None, split: str = "train") -> PointSet:
    """Point data by registered name or CSV path (what a run of points trains on)."""
    return open_dataset(name, options=LoadOptions(data_root, split), layout=POINTS)


def open_dataset(
    name: str,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    strict: bool = False,
    options: LoadOptions = LoadOptions(),
    cache: str = "auto",
    layout: str = IMAGES,
) -> ImageDataset | ImageFolder:
    """Like load_dataset, but a folder is only scanned (an ImageFolder) when `cache` is
    "stream", or "auto" and its decoded images would exceed MEMORY_BUDGET_BYTES. Another
    `layout` ("paired", "unpaired") gives the two sides of a translation (an ImageDataset with
    `sources`): a registered dataset of that layout, or a folder its reader takes."""
    if cache not in CACHES:
        raise GanforgeError(f"--data-cache: '{cache}' is not one of {', '.join(CACHES)}")
    if layout != IMAGES:
        return _open_layout(layout, name, resolution, channels, strict, options, cache)
    if name in _DATASETS:
        return _DATASETS[name](options).to_shape(resolution, channels)
    path = Path(name).expanduser()
    if path.is_dir():
        if cache == "stream" or (cache == "auto" and _too_big(path, resolution, channels)):
            return open_image_folder(path, resolution, channels, strict, options.progress)
        return load_image_folder(path, resolution, channels, strict, options.progress)
    if path.exists():
        raise GanforgeError(f"--data: '{name}' is a file, not a folder of images")
    raise GanforgeError(
        f"--data: unknown dataset '{name}': choose one of {', '.join(list_datasets())}, "
        "or give an existing folder of images"
    )


def _open_layout(
    layout: str,
    name: str,
    resolution: int | None,
    channels: int | None,
    strict: bool,
    options: LoadOptions,
    cache: str,
) -> ImageDataset:
    if cache == "stream":
        raise GanforgeError(
            "--data-cache: stream decodes single images batch by batch; the two sides of a "
            "translation are decoded once into memory (use auto, cpu or device)"
        )
    if layout not in _OPENERS:
        raise GanforgeError(f"--data: no reader of {layout} data is installed")
    if _LAYOUTS.get(name) == layout:
        return _DATASETS[name](options).to_shape(resolution, channels)
    return _OPENERS[layout](name, resolution, channels, strict, options, cache)


def _open_pairs(
    name: str,
    resolution: int | None,
    channels: int | None,
    strict: bool,
    options: LoadOptions,
    cache: str,
) -> ImageDataset:
    """Paired data: a folder of pairs (A|B side by side, or A/ and B/ with the same names)."""
    path = Path(name).expanduser()
    if name not in _DATASETS and path.is_dir():
        pairs = load_paired_folder(path, resolution, channels, strict=strict)
        return pairs.as_translation()
    if name in _DATASETS or path.exists():
        what = (
            "is a file"
            if name not in _DATASETS
            else ("holds single images" if _LAYOUTS[name] == IMAGES else f"is {_LAYOUTS[name]}")
        )
        raise GanforgeError(
            f"--data: '{name}' {what}, not image pairs: give a paired dataset "
            f"({', '.join(list_datasets(layout='paired'))}) or a folder of pairs (A|B side by "
            "side, or A/ and B/ folders)"
        )
    raise GanforgeError(
        f"--data: unknown dataset '{name}': choose a paired dataset "
        f"({', '.join(list_datasets(layout='paired'))}), or give a folder of image pairs"
    )


def _open_point_file(
    name: str,
    resolution: int | None,
    channels: int | None,
    strict: bool,
    options: LoadOptions,
    cache: str,
) -> PointSet:
    """Point data from a file: a CSV of points (one per row)."""
    if name in _DATASETS:
        raise GanforgeError(
            f"--data: '{name}' holds images, not points: give a point dataset "
            f"({', '.join(list_datasets(layout=POINTS))}) or a CSV file of points"
        )
    return load_point_csv(name).to_shape(resolution, channels)


def _too_big(path: Path, resolution: int | None, channels: int | None) -> bool:
    folder, _ = scan_image_folder(path, resolution, channels)
    return len(folder) * folder.channels * folder.resolution**2 > MEMORY_BUDGET_BYTES


def _idx_loader(name: str) -> Loader:
    return lambda o: load_idx_dataset(
        IDX_DATASETS[name], o.data_root, o.split, download=o.download, progress=o.progress
    )


def _cifar_loader(name: str) -> Loader:
    return lambda o: load_cifar(
        CIFAR_DATASETS[name],
        o.data_root,
        o.split,
        trust_pickle=o.trust_pickle,
        download=o.download,
        progress=o.progress,
    )


register_dataset("mnist-mini", lambda _: load_mnist_mini())
register_dataset("digits", lambda _: load_digits())
register_dataset(STACKED_MNIST, lambda o: load_stacked_mnist(o.split))
register_layout("paired", _open_pairs)
register_layout("unpaired", open_unpaired_folder)
register_layout(POINTS, _open_point_file)
for _name in POINT_DATASETS:
    register_dataset(_name, lambda o, name=_name: load_point_dataset(name, o.split), POINTS)
register_dataset(
    "mnist-mini-edges-unpaired", lambda o: load_unpaired_digits("edges", o.split), "unpaired"
)
for _task in DIGIT_PAIR_TASKS:
    register_dataset(
        f"mnist-mini-{_task}", lambda o, task=_task: load_digit_pairs(task, o.split), "paired"
    )
for _name in IDX_DATASETS:
    register_dataset(_name, _idx_loader(_name))
for _name in CIFAR_DATASETS:
    register_dataset(_name, _cifar_loader(_name))

__all__ = [
    "IMAGES",
    "POINTS",
    "STACKED_MNIST",
    "PointSet",
    "is_point_data",
    "load_points",
    "ImageDataset",
    "ImageFolder",
    "LoadOptions",
    "PairedDataset",
    "RealBatches",
    "data_root",
    "layout_for",
    "list_datasets",
    "load_dataset",
    "load_paired_folder",
    "open_dataset",
    "register_dataset",
    "register_layout",
    "to_model_range",
    "to_uint8",
]

"""Datasets by name: a registry of offline sources, or a folder path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ganforge.data.bundled import load_digits, load_mnist_mini
from ganforge.data.dataset import ImageDataset, to_model_range, to_uint8
from ganforge.data.folder import load_image_folder
from ganforge.errors import GanforgeError

_DATASETS: dict[str, Callable[[], ImageDataset]] = {}


def register_dataset(name: str, loader: Callable[[], ImageDataset]) -> None:
    _DATASETS[name] = loader


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(
    name: str,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    on_bad_image: str = "skip",
) -> ImageDataset:
    """A dataset by registered name or folder path, converted to `resolution` and `channels`."""
    if name in _DATASETS:
        return _DATASETS[name]().to_shape(resolution, channels)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_image_folder(path, resolution, channels, on_bad_image).to_shape(
            resolution, channels
        )
    if path.exists():
        raise GanforgeError(f"--data: '{name}' is a file, not a folder of images")
    raise GanforgeError(
        f"--data: unknown dataset '{name}': choose one of {', '.join(list_datasets())}, "
        "or give an existing folder of images"
    )


register_dataset("mnist-mini", load_mnist_mini)
register_dataset("digits", load_digits)

__all__ = [
    "ImageDataset",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "to_model_range",
    "to_uint8",
]

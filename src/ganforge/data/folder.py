"""A folder of images, at any depth; the first-level sub-folder names become class labels."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganforge.data.dataset import ImageDataset
from ganforge.errors import GanforgeError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DEFAULT_RESOLUTION = 64


def load_image_folder(
    root: str | Path, resolution: int | None, channels: int | None, on_bad_image: str = "skip"
) -> ImageDataset:
    """Read every image under `root`, center-cropped to a square and resized to `resolution`.

    Unreadable files are skipped with a warning naming them, or stop the load when
    `on_bad_image == "error"`.
    """
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise GanforgeError(
            f"--data: folder '{root}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    resolution = resolution or DEFAULT_RESOLUTION
    mode = "L" if channels == 1 else "RGB"
    class_names = sorted({_class_of(root, f) for f in files})
    if class_names == [""]:
        class_names = []
    arrays, labels = [], []
    for file in files:
        try:
            arrays.append(_read_square(file, resolution, mode))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            if on_bad_image == "error":
                raise GanforgeError(f"--data: cannot read image '{file}': {exc}") from None
            warnings.warn(f"skipping unreadable image '{file}': {exc}", stacklevel=2)
            continue
        name = _class_of(root, file)
        labels.append(class_names.index(name) if class_names else -1)
    if not arrays:
        raise GanforgeError(f"--data: no readable images in '{root}'")
    stacked = np.stack(arrays)
    if stacked.ndim == 3:
        stacked = stacked[..., None]
    images = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
    return ImageDataset(images, torch.tensor(labels, dtype=torch.int64), str(root), class_names)


def _class_of(root: Path, file: Path) -> str:
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""


def _read_square(file: Path, resolution: int, mode: str) -> np.ndarray:
    with Image.open(file) as image:
        image = image.convert(mode)
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)

"""Images a user hands a tool (`ganforge translate`, `ganforge latent recon`): an image file, or
every image file in a folder, read like a folder of training images (center-cropped to a
square, resized to the run's resolution, converted to its channels). A bad INPUT or file stops
with one line naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ganforge.data.folder import DECODE_ERRORS, IMAGE_SUFFIXES, decode_failure, read_square
from ganforge.errors import GanforgeError


def image_files(inputs: Path, leave_out: Path | None = None) -> list[Path]:
    """`inputs` if it is a file, else every image file in the folder at any depth, sorted;
    hidden files and folders are skipped, and so is whatever lies inside `leave_out` (a tool's
    earlier outputs in the input folder)."""
    if inputs.is_file():
        return [inputs]
    if not inputs.is_dir():
        raise GanforgeError(f"INPUT: no such file or folder '{inputs}'")
    outputs = leave_out.resolve() if leave_out is not None else None
    files = []
    for file in sorted(inputs.rglob("*")):
        hidden = any(part.startswith(".") for part in file.relative_to(inputs).parts)
        if hidden or not file.is_file() or file.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if outputs is not None and outputs in file.resolve().parents:
            continue
        files.append(file)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise GanforgeError(f"INPUT: folder '{inputs}' holds no images ({suffixes})")
    return files


def read_images(files: Iterable[Path], resolution: int, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W): every file decoded (before the caller writes anything)."""
    return torch.stack([read_image(file, resolution, channels) for file in files])


def read_image(file: Path, resolution: int, channels: int) -> torch.Tensor:
    """uint8 (C, H, W) of one file; a file that does not decode is a one-line error naming it."""
    try:
        pixels = read_square(file, resolution, channels)
    except DECODE_ERRORS as exc:
        raise GanforgeError(f"INPUT: cannot read image '{file}': {decode_failure(exc)}") from None
    return torch.from_numpy(np.ascontiguousarray(pixels))

"""Encode -> decode with an autoencoding model (a VAE): how much of an image survives the code.

A family whose kind is `autoencoder` reconstructs (`family.reconstruct`); its run saves
RUN/samples/reconstructions.png at the end of training; `ganforge latent recon RUN INPUT --out
FILE.png` does it for user images, read like a folder of training images (center-cropped,
resized to the run's resolution and channels); every input is decoded before anything is
written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganforge.data.folder import DECODE_ERRORS, IMAGE_SUFFIXES, decode_failure, read_square
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily
from ganforge.report import save_images
from ganforge.report.grid import paired_rows
from ganforge.run import Run


def save_reconstructions(
    family: ModelFamily, decoder: nn.Module, images: torch.Tensor, path: str | Path
) -> Path:
    """The grid of `images` (uint8 NCHW) and their reconstructions as a PNG."""
    grid, columns = paired_rows(images, family.reconstruct(decoder, images))
    return save_images(grid, path, columns=columns)


def reconstruct_files(
    run: str | Path | Run,
    inputs: str | Path,
    out: str | Path,
    *,
    checkpoint: str | Path | None = None,
    ema: bool = True,
) -> tuple[Path, int]:
    """Reconstruct an image file, or every image file in a folder (any depth, sorted), into one
    grid `out` (rows of inputs over rows of reconstructions). Returns the path and the count."""
    run = run if isinstance(run, Run) else Run(run)
    family = run.load(checkpoint)
    if not family.kind.autoencoder:
        raise GanforgeError(
            f"run '{run.path}' is a {run.config.model} run, which has no encoder: "
            "reconstruction takes a vae run"
        )
    if Path(out).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise GanforgeError(f"--out: '{out}' must end in .png, .jpg or .webp")
    config = run.config
    images = torch.stack(
        [_read(file, config.resolution, config.channels) for file in _input_files(Path(inputs))]
    )
    return save_reconstructions(family, run.generator(ema), images, out), len(images)


def _input_files(inputs: Path) -> list[Path]:
    if inputs.is_file():
        return [inputs]
    if not inputs.is_dir():
        raise GanforgeError(f"INPUT: no such file or folder '{inputs}'")
    files = [
        file
        for file in sorted(inputs.rglob("*"))
        if file.is_file()
        and file.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in file.relative_to(inputs).parts)
    ]
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise GanforgeError(f"INPUT: folder '{inputs}' holds no images ({suffixes})")
    return files


def _read(file: Path, resolution: int, channels: int) -> torch.Tensor:
    try:
        return torch.from_numpy(np.ascontiguousarray(read_square(file, resolution, channels)))
    except DECODE_ERRORS as exc:
        raise GanforgeError(f"INPUT: cannot read image '{file}': {decode_failure(exc)}") from None

"""Encode -> decode with an autoencoding model (a VAE): how much of an image survives the code.

A family whose kind is `autoencoder` reconstructs (`family.reconstruct`); its run saves
RUN/samples/reconstructions.png at the end of training; `ganforge latent recon RUN INPUT --out
FILE.png` does it for user images, read like a folder of training images (center-cropped,
resized to the run's resolution and channels); every input is decoded before anything is
written.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganforge.data.inputs import image_files, read_images
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
    images = read_images(image_files(Path(inputs)), config.resolution, config.channels)
    return save_reconstructions(family, run.generator(ema), images, out), len(images)

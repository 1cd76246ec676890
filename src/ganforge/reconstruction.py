"""Encode -> decode with an autoencoding model (a VAE): how much of an image survives the code.

A family that can `encode(images) -> (mu, logvar)` reconstructs through the posterior mean
(no sampling noise, so the same image gives the same reconstruction). The training loop saves
RUN/samples/reconstructions.png at the end; `ganforge latent recon RUN INPUT --out FILE.png`
does it for user images, read like a folder of training images (center-cropped, resized to
the run's resolution and channels); every input is decoded before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganforge.data import to_model_range, to_uint8
from ganforge.data.folder import DECODE_ERRORS, IMAGE_SUFFIXES, decode_failure, read_square
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily
from ganforge.report import save_images
from ganforge.run import Run

COLUMNS = 8  # images per row of a reconstructions grid
RECONSTRUCTIONS_FILE = "reconstructions.png"  # in RUN/samples/


def can_reconstruct(family: ModelFamily) -> bool:
    return callable(getattr(family, "encode", None))


def reconstruct(family: ModelFamily, decoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) images -> uint8 (N, C, H, W) decoder(mu(images)), in eval mode on the
    decoder's device (on the CPU when returned); networks left in the mode they were in."""
    encoder = family.networks["encoder"]
    device = next(decoder.parameters()).device
    was_training = encoder.training, decoder.training
    encoder.eval()
    decoder.eval()
    try:
        with torch.no_grad():
            mu, _ = family.encode(to_model_range(images).to(device))
            return to_uint8(decoder(mu)).cpu()
    finally:
        encoder.train(was_training[0])
        decoder.train(was_training[1])


def paired_rows(inputs: torch.Tensor, outputs: torch.Tensor, columns: int = COLUMNS):
    """A row of inputs, then the row of their reconstructions, and so on: uint8 (2N', H, W, C)
    with N' = N rounded up to whole rows (white cells fill the last), and its column count."""
    columns = min(columns, len(inputs))
    pad = -len(inputs) % columns
    if pad:
        blank = torch.full((pad, *inputs.shape[1:]), 255, dtype=torch.uint8)
        inputs, outputs = torch.cat([inputs, blank]), torch.cat([outputs, blank])
    rows = torch.stack([inputs.unflatten(0, (-1, columns)), outputs.unflatten(0, (-1, columns))], 1)
    return rows.flatten(0, 2).permute(0, 2, 3, 1).numpy(), columns


def fixed_examples(dataset, seed: int, n: int = 4 * COLUMNS) -> torch.Tensor:
    """`n` real images (uint8 NCHW, CPU) picked by their own seeded generator (the training RNG
    is untouched): the ones a run's reconstructions grid shows."""
    n = min(n, len(dataset))
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return dataset.images_at(order[:n].sort().values).cpu()


def save_reconstructions(
    family: ModelFamily, decoder: nn.Module, images: torch.Tensor, path: str | Path
) -> Path:
    """The grid of `images` (uint8 NCHW) and their reconstructions as a PNG."""
    grid, columns = paired_rows(images, reconstruct(family, decoder, images))
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
    if not can_reconstruct(family):
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

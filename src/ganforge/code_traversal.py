"""`ganforge latent codes RUN --out FILE`: the code traversals of a run whose latent space has
codes of their own (InfoGAN), as Chen et al. 2016 draw them — one block per continuous code,
one row per value of the categorical code, the continuous code swept along the columns with
one noise vector for the whole block; each block captioned with what it sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ganforge.atomic import atomic_path
from ganforge.bounds import check_at_most, check_seed
from ganforge.errors import GanforgeError
from ganforge.models import run_kind
from ganforge.report.gif import with_caption
from ganforge.report.grid import image_grid
from ganforge.run import Run

MAX_COLUMNS = 64
MAX_SPAN = 100.0  # the codes are drawn in [-1, 1]; the paper sweeps [-2, 2]


def code_traversal(
    run: str | Path | Run,
    out: str | Path,
    checkpoint: str | Path | None = None,
    ema: bool = True,
    seed: int = 0,
    columns: int = 8,
    span: float = 2.0,
) -> tuple[Path, list[str]]:
    """Write the traversal picture to `out` (.png, .jpg or .webp); it and its blocks'
    captions. Checked before the run's weights are read: --columns, --span, --seed, --out."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise GanforgeError(f"--out: codes writes one picture (.png, .jpg, .webp), not '{out}'")
    if columns < 2:
        raise GanforgeError(f"--columns: a sweep needs at least 2, got {columns}")
    check_at_most("--columns", columns, MAX_COLUMNS)
    if not 0 < span <= MAX_SPAN:
        raise GanforgeError(f"--span: must be in (0, {MAX_SPAN:g}], got {span}")
    check_seed("--seed", seed)
    run = run if isinstance(run, Run) else Run(run)
    if not run_kind(run.config).latent_codes:
        raise GanforgeError(
            f"run '{run.path}' is a {run.config.model} run, whose latent space has no codes "
            "of their own: train --model infogan"
        )
    family = run.load(checkpoint)
    images, captions = family.traversal(run.generator(ema), seed, columns, span)
    blocks = np.split(images, len(captions))
    pictures = [
        with_caption(_picture(block, columns), text) for block, text in zip(blocks, captions)
    ]
    width = max(p.width for p in pictures)
    sheet = Image.new("RGB", (width, sum(p.height for p in pictures)), "white")
    top = 0
    for picture in pictures:
        sheet.paste(picture, (0, top))
        top += picture.height
    with atomic_path(out) as tmp:
        sheet.save(tmp, format=Image.registered_extensions()[out.suffix.lower()])
    return out, captions


def _picture(images: np.ndarray, columns: int) -> Image.Image:
    grid = image_grid(images, columns)
    return Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).convert("RGB")

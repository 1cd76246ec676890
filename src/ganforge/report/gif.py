"""The fixed-noise sample grids of a run as one animated GIF: training, watched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ganforge.atomic import atomic_path


def grids_to_gif(
    frames: list[Path], path: str | Path, *, ms_per_frame: int = 400, hold_last_ms: int = 1500
) -> Path | None:
    """Write `frames` (PNG grids of the same size, in training order) as a looping GIF.

    Returns None when there is nothing to animate. Frames of another size than the first are
    left out (a grid written by a different --n-grid).
    """
    images = []
    for frame in frames:
        with Image.open(frame) as image:
            images.append(image.convert("RGB"))
    images = [image for image in images if images and image.size == images[0].size]
    if not images:
        return None
    durations = [ms_per_frame] * (len(images) - 1) + [hold_last_ms]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
        )
    return Path(path)


def frames_to_gif(
    frames: np.ndarray, path: str | Path, *, ms_per_frame: int = 100, min_pixels: int = 168
) -> Path:
    """Write uint8 images (N, H, W, C), one per frame, as a looping GIF, enlarged (nearest) to
    at least `min_pixels` on a side so that a 28-pixel digit is visible. Pillow merges
    identical neighbouring frames into one shown as long."""
    scale = max(1, -(-min_pixels // max(frames.shape[1:3])))
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=ms_per_frame,
            loop=0,
        )
    return Path(path)

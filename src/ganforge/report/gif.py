"""The fixed-noise sample grids of a run as one animated GIF: training, watched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ganforge.atomic import atomic_path

CAPTION_PIXELS = 11  # the default bitmap font's height: a strip that fits the smallest grid


def grids_to_gif(
    frames: list[Path],
    path: str | Path,
    *,
    captions: list[str] | None = None,
    ms_per_frame: int = 400,
    hold_last_ms: int = 1500,
) -> Path | None:
    """Write `frames` (PNG grids of the same size, in training order) as a looping GIF, each
    with its caption ("step 400") in a strip below it, so a viewer knows when a frame is from.

    Returns None when there is nothing to animate. Frames of another size than the first are
    left out (a grid written by a different --n-grid).
    """
    images = []
    for index, frame in enumerate(frames):
        with Image.open(frame) as image:
            images.append((image.convert("RGB"), captions[index] if captions else ""))
    size = images[0][0].size if images else None
    images = [with_caption(image, text) for image, text in images if image.size == size]
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


def with_caption(image: Image.Image, text: str) -> Image.Image:
    """`image` over a white strip holding `text` (the image alone when there is none)."""
    if not text:
        return image
    framed = Image.new("RGB", (image.width, image.height + CAPTION_PIXELS + 2), "white")
    framed.paste(image, (0, 0))
    ImageDraw.Draw(framed).text(
        (2, image.height + 1), text, fill="black", font=ImageFont.load_default(CAPTION_PIXELS)
    )
    return framed


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

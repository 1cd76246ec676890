"""Aligned image pairs for image-to-image translation (pix2pix, Isola et al. 2017).

Two layouts:
- side by side: each image holds A on the left half and B on the right (pix2pix's datasets);
- parallel folders: ROOT/A/ and ROOT/B/, matched by relative path without the suffix
  (A/x/1.png goes with B/x/1.jpg). Files without a partner are reported by name.
Both halves are center-cropped and resized like a folder of images (folder.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data.dataset import ImageDataset
from ganforge.data.folder import (
    DECODE_ERRORS,
    DEFAULT_RESOLUTION,
    as_viewed,
    read_square,
    report_skipped,
    scan_image_folder,
    square_pixels,
)
from ganforge.errors import GanforgeError

LAYOUTS = ("auto", "side-by-side", "folders")


@dataclass
class PairedDataset:
    """Pairs as two aligned uint8 tensors (N, C, H, W): images_a[i] goes with images_b[i]."""

    images_a: torch.Tensor
    images_b: torch.Tensor
    names: list[str]  # each pair's path relative to the root (no suffix for parallel folders)
    name: str
    layout: str
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.images_a.shape[0]

    def as_translation(self) -> ImageDataset:
        """The pairs as a translator's data: A is the source, B the image to produce
        (pix2pix's A -> B direction); no class labels."""
        return ImageDataset(
            self.images_b,
            torch.full((len(self),), -1, dtype=torch.int64),
            self.name,
            [],
            location=self.name,
            skipped=self.skipped,
            sources=self.images_a,
        )


def load_paired_folder(
    root: str | Path,
    resolution: int | None = None,
    channels: int | None = None,
    *,
    layout: str = "auto",
    strict: bool = False,
) -> PairedDataset:
    """Read image pairs from `root`; `layout` auto picks folders when ROOT/A and ROOT/B exist."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise GanforgeError(f"--layout: '{layout}' is not one of {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise GanforgeError(f"--data: '{root}' is not a folder of image pairs")
    resolution = resolution or DEFAULT_RESOLUTION
    channels = 1 if channels == 1 else 3
    has_folders = (root / "A").is_dir() and (root / "B").is_dir()
    if layout == "folders" or (layout == "auto" and has_folders):
        return _parallel_folders(root, resolution, channels, strict)
    return _side_by_side(root, resolution, channels, strict)


def _side_by_side(root: Path, resolution: int, channels: int, strict: bool) -> PairedDataset:
    folder, bad = scan_image_folder(root, resolution, channels)
    total = len(folder.files) + len(bad)
    if strict:
        report_skipped(root, bad, total, strict)
    halves_a, halves_b, names = [], [], []
    for file in folder.files:
        try:
            a, b = _split_halves(file, resolution, channels)
        except DECODE_ERRORS as exc:
            bad.append((file, str(exc)))
            if strict:
                report_skipped(root, bad[-1:], total, strict)
            continue
        halves_a.append(a)
        halves_b.append(b)
        names.append(str(file.relative_to(root)))
    report_skipped(root, sorted(bad), total, strict)
    return _paired(halves_a, halves_b, names, root, "side-by-side", bad)


def _split_halves(file: Path, resolution: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(file) as image:
        image.draft(None, (2 * resolution, resolution))
        image = as_viewed(image)
        width, height = image.size
        if width < 2:
            raise ValueError(f"{width} pixels wide: cannot split into A|B halves")
        half = width // 2
        a = square_pixels(image.crop((0, 0, half, height)), resolution, channels)
        b = square_pixels(image.crop((half, 0, 2 * half, height)), resolution, channels)
    return a, b


def _parallel_folders(root: Path, resolution: int, channels: int, strict: bool) -> PairedDataset:
    sides = {}
    bad: list[tuple[Path, str]] = []
    for side in ("A", "B"):
        folder, others = scan_image_folder(root / side, resolution, channels)
        bad += others
        by_stem: dict[str, Path] = {}
        for file in folder.files:
            stem = str(file.relative_to(root / side).with_suffix(""))
            if stem in by_stem:
                bad.append((file, f"same name as '{by_stem[stem].name}' in {side}/"))
            else:
                by_stem[stem] = file
        sides[side] = by_stem
    a_files, b_files = sides["A"], sides["B"]
    for stem in sorted(a_files.keys() - b_files.keys()):
        bad.append((a_files[stem], "no file of the same name in B/"))
    for stem in sorted(b_files.keys() - a_files.keys()):
        bad.append((b_files[stem], "no file of the same name in A/"))
    total = len(a_files) + len(b_files) + len(bad)
    if strict:
        report_skipped(root, sorted(bad), total, strict)
    halves_a, halves_b, names = [], [], []
    for stem in sorted(a_files.keys() & b_files.keys()):
        try:
            a = read_square(a_files[stem], resolution, channels)
            b = read_square(b_files[stem], resolution, channels)
        except DECODE_ERRORS as exc:
            bad.append((a_files[stem], f"pair '{stem}' unreadable: {exc}"))
            if strict:
                report_skipped(root, bad[-1:], total, strict)
            continue
        halves_a.append(a)
        halves_b.append(b)
        names.append(stem)
    report_skipped(root, sorted(bad), total, strict)
    return _paired(halves_a, halves_b, names, root, "folders", bad)


def _paired(
    halves_a: list[np.ndarray],
    halves_b: list[np.ndarray],
    names: list[str],
    root: Path,
    layout: str,
    bad: list[tuple[Path, str]],
) -> PairedDataset:
    if not names:
        raise GanforgeError(f"--data: no readable image pairs in '{root}' ({layout})")
    return PairedDataset(
        torch.from_numpy(np.stack(halves_a)),
        torch.from_numpy(np.stack(halves_b)),
        names,
        str(root),
        layout,
        skipped=[f"{file}: {reason}" for file, reason in sorted(bad)],
    )

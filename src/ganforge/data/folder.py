"""A folder of images, at any depth; the first-level sub-folder names become class labels.

Every image is center-cropped to a square and resized to the model's resolution, as grayscale
(channels 1) or RGB. Files that are not images, or that cannot be decoded, are skipped with a
warning naming each (and a count at the end), or stop the load with `strict`.

Small folders are decoded once into one uint8 tensor (`load_image_folder`); large ones are
scanned (`open_image_folder`) and decoded batch by batch (`ImageFolder.images_at`, or the
DataLoader in pipeline.py).
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps
from tqdm.auto import tqdm

from ganforge.data.dataset import ImageDataset
from ganforge.errors import GanforgeError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
IGNORED_NAMES = {"Thumbs.db", "desktop.ini"}  # clutter file managers leave, never data
DEFAULT_RESOLUTION = 64
NAMED_WARNINGS = 20  # skipped files named one warning each; the summary counts them all
# The most pixels an image may declare (after a JPEG's reduced-scale draft): a 13000x13000 PNG
# would take 1.5 GB and seconds to decode only to be shrunk to 64 px. Checked on the header,
# before any pixel is decoded; Pillow's own DecompressionBombError comes far later (179 MP).
MAX_IMAGE_PIXELS = 40_000_000
# What Pillow raises for files it cannot decode: a truncated PNG, OSError; a DDS texture in a
# pixel format it lacks, NotImplementedError; its plugins' header parsers, SyntaxError,
# struct.error, EOFError, IndexError, ... (Pillow's own fuzzers expect several of these).
DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    NotImplementedError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    Image.DecompressionBombError,
)


class ImageRefused(ValueError):
    """An image ganforge will not decode (too many pixels, or pixels of an unknown range);
    a ValueError, so that every reader reports it like any file that does not decode."""


@dataclass
class ImageFolder:
    """The images of a folder, scanned but not decoded: decoded on demand to uint8 CHW."""

    root: Path
    files: list[Path]
    labels: torch.Tensor  # int64 (N,), -1 when the folder has no class sub-folders
    class_names: list[str]
    resolution: int
    channels: int
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def name(self) -> str:
        return str(self.root)

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def decode(self, index: int) -> np.ndarray:
        """Image `index` as uint8 (C, H, W); raises GanforgeError naming a file that fails."""
        file = self.files[index]
        try:
            return read_square(file, self.resolution, self.channels)
        except DECODE_ERRORS as exc:
            raise GanforgeError(
                f"--data: cannot read image '{file}': {decode_failure(exc)} (found while "
                "streaming: delete it, or use --data-cache cpu to skip unreadable images when "
                "loading)"
            ) from None

    def images_at(self, indices: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.decode(int(i)) for i in indices]))


def decode_failure(exc: Exception) -> str:
    """Why a file did not decode, in a few words (some of Pillow's errors carry no message)."""
    return str(exc) or type(exc).__name__


def read_square(file: Path, resolution: int, channels: int) -> np.ndarray:
    """Decode `file`, center-crop it to a square, resize it (Lanczos): uint8 (C, H, W)."""
    with Image.open(file) as image:
        image.draft(None, (resolution, resolution))  # JPEG: decode at a reduced scale, faster
        return square_pixels(as_viewed(image), resolution, channels)


def check_pixel_budget(image: Image.Image) -> None:
    """Refuse an image whose header declares more than MAX_IMAGE_PIXELS (nothing decoded yet)."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageRefused(
            f"{width}x{height} pixels ({width * height / 1e6:.1f} megapixels) is over the limit "
            f"of {MAX_IMAGE_PIXELS / 1e6:g} megapixels"
        )


def as_viewed(image: Image.Image) -> Image.Image:
    """`image` as a photo viewer shows it, in an 8-bit mode: turned upright by its EXIF
    orientation, 16-bit grey scaled to 8 bits, [0, 1] float grey to 0..255. Checks the pixel
    budget first; refuses pixels whose range it cannot know."""
    check_pixel_budget(image)
    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        image = ImageOps.exif_transpose(image)  # a copy: only when there is something to turn
    if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
        values = np.asarray(image).astype(np.float64)  # PNG and TIFF: 16 bits, 0..65535
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8))
    if image.mode == "I":
        raise ImageRefused("32-bit integer pixels of unknown range: save it with 8 or 16 bits")
    if image.mode == "F":
        return Image.fromarray(_float_grey(np.asarray(image, dtype=np.float64)))
    return image


def _float_grey(values: np.ndarray) -> np.ndarray:
    """Float grey pixels in [0, 1] (or already 0..255) as uint8; any other range is refused."""
    if not np.isfinite(values).all():
        raise ImageRefused("float pixels that are not finite (NaN or infinity)")
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        values = values * 255.0
    elif low < 0.0 or high > 255.0:
        raise ImageRefused(
            f"float pixels from {low:g} to {high:g}: not [0, 1] nor 0..255, the range is unknown"
        )
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def square_pixels(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """The center square of `image` at `resolution`, grayscale or RGB: uint8 (C, H, W)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.convert("L" if channels == 1 else "RGB")
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS, reducing_gap=3.0)
    pixels = np.asarray(image, dtype=np.uint8)
    return (pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)).copy()


def scan_image_folder(
    root: str | Path, resolution: int | None = None, channels: int | None = None
) -> tuple[ImageFolder, list[tuple[Path, str]]]:
    """Every file under `root` in sorted order: image files (by suffix) and the others, with why."""
    root = Path(root)
    files, others = [], []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.name in IGNORED_NAMES:
            continue
        if not path.is_file():
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.append(path)
        else:
            others.append((path, "not an image file"))
    class_names = sorted({_class_of(root, f) for f in files} - {""})
    if class_names and any(_class_of(root, f) == "" for f in files):
        class_names = []  # images both at the top and in sub-folders: no consistent classes
    labels = torch.tensor(
        [class_names.index(_class_of(root, f)) if class_names else -1 for f in files],
        dtype=torch.int64,
    )
    folder = ImageFolder(
        root,
        files,
        labels,
        class_names,
        resolution or DEFAULT_RESOLUTION,
        1 if channels == 1 else 3,
    )
    return folder, others


def open_image_folder(
    root: str | Path,
    resolution: int | None = None,
    channels: int | None = None,
    strict: bool = False,
    progress: bool = False,
) -> ImageFolder:
    """Scan a folder for streaming: every image's header is read now (cheap); pixels later."""
    folder, bad = _scan_checked(root, resolution, channels, strict)
    total, kept = len(folder.files) + len(bad), []
    files = tqdm(folder.files, desc="checking images", unit="img", disable=not progress)
    for index, file in enumerate(files):
        try:
            with Image.open(file) as image:
                check_pixel_budget(image)
                kept.append(index)
        except DECODE_ERRORS as exc:
            bad.append((file, decode_failure(exc)))
    report_skipped(folder.root, sorted(bad), total, strict)
    return _keep(folder, kept, bad)


def load_image_folder(
    root: str | Path,
    resolution: int | None = None,
    channels: int | None = None,
    strict: bool = False,
    progress: bool = False,
) -> ImageDataset:
    """Decode every image under `root` into one uint8 tensor (N, C, resolution, resolution)."""
    folder, bad = _scan_checked(root, resolution, channels, strict)
    total, kept, arrays = len(folder.files) + len(bad), [], []
    files = tqdm(folder.files, desc="decoding images", unit="img", disable=not progress)
    for index, file in enumerate(files):
        try:
            arrays.append(read_square(file, folder.resolution, folder.channels))
            kept.append(index)
        except DECODE_ERRORS as exc:
            bad.append((file, decode_failure(exc)))
            if strict:
                report_skipped(folder.root, bad, total, strict)
    report_skipped(folder.root, sorted(bad), total, strict)
    folder = _keep(folder, kept, bad)
    return ImageDataset(
        torch.from_numpy(np.stack(arrays)),
        folder.labels,
        folder.name,
        folder.class_names,
        location=folder.location,
        skipped=folder.skipped,
    )


def _scan_checked(
    root: str | Path, resolution: int | None, channels: int | None, strict: bool
) -> tuple[ImageFolder, list[tuple[Path, str]]]:
    """Scan, refusing a folder without images; with `strict`, a non-image file is an error."""
    folder, bad = scan_image_folder(root, resolution, channels)
    if not folder.files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise GanforgeError(f"--data: folder '{folder.root}' holds no images ({suffixes})")
    if strict:
        report_skipped(folder.root, bad, len(folder.files) + len(bad), strict)
    return folder, bad


def report_skipped(root: Path, bad: list[tuple[Path, str]], total: int, strict: bool) -> None:
    """Warn about each skipped file (the first NAMED_WARNINGS by name), then count them;
    with `strict`, the first one is an error instead."""
    if not bad:
        return
    if strict:
        file, reason = bad[0]
        raise GanforgeError(f"--data: cannot read image '{file}': {reason} (--strict)")
    for file, reason in bad[:NAMED_WARNINGS]:
        warnings.warn(f"skipping '{file}': {reason}", stacklevel=3)
    warnings.warn(
        f"skipped {len(bad)} of {total} files under '{root}' (not images, or unreadable); "
        "--strict stops at the first instead",
        stacklevel=3,
    )


def _keep(folder: ImageFolder, kept: list[int], bad: list[tuple[Path, str]]) -> ImageFolder:
    folder.files = [folder.files[i] for i in kept]
    folder.labels = folder.labels[torch.tensor(kept, dtype=torch.int64)]
    folder.skipped = [f"{file}: {reason}" for file, reason in sorted(bad)]
    if not folder.files:
        raise GanforgeError(f"--data: no readable images in '{folder.root}'")
    return folder


def _class_of(root: Path, file: Path) -> str:
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ""

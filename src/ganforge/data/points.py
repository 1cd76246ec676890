"""Point data: 2-D toy distributions and a user's CSV of points, for the mode-collapse lab.

Papers on mode collapse train a GAN on points, where collapse can be seen and counted:
- ring8: 8 Gaussians on the unit circle, std 0.01 (VEEGAN, Srivastava et al. 2017; PacGAN,
  Lin et al. 2018);
- grid25: 25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05 (PacGAN's 2-D grid);
- spiral, moons, circles: connected shapes, with no modes to count.
Every generator is deterministic from its seed, and a mixture picks each point's component
uniformly. `load_point_csv` reads a user's points, refusing bad input with one line naming the
file and, where it can, the line.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.errors import GanforgeError

MAX_POINT_FILE_BYTES = 512 * 2**20  # a CSV of points read into memory
MAX_POINTS = 10_000_000  # rows of a CSV (x, y, label as float64 while parsing: 240 MB)
POINTS_PER_SPLIT = 50_000  # the built-ins' train and test splits
SPLIT_SEEDS = {"train": 0, "test": 1}  # different points, the same distribution

RING8_STD = 0.01
GRID25_STD = 0.05
SHAPE_NOISE = 0.05  # moons and circles, as scikit-learn's examples draw them
SPIRAL_TURNS = 1.5
SPIRAL_RADIUS = 2.0
SPIRAL_NOISE = 0.05 * SPIRAL_RADIUS


@dataclass
class PointSet:
    """Points (float32 (N, D)) a GAN learns, as papers on mode collapse use them, with the
    mixture behind them where there is one, so captured modes can be counted.

    It answers what the training pipeline reads from an ImageDataset (`images`, `sources`,
    `class_names`), so batches of points flow where batches of images do.
    """

    points: torch.Tensor  # float32 (N, D), D = 2 for the built-ins
    labels: torch.Tensor  # int64 (N,): the component each point was drawn from, -1 where none
    name: str
    modes: torch.Tensor | None = None  # float32 (M, D): a Gaussian mixture's centres, else None
    mode_std: float = 0.0  # the std of every mixture component (0 when modes is None)
    location: str = ""  # the CSV file read, "" for generated data

    def __len__(self) -> int:
        return self.points.shape[0]

    @property
    def dims(self) -> int:
        return self.points.shape[1]

    @property
    def images(self) -> torch.Tensor:
        """The points: what every batch source reads as the real samples."""
        return self.points

    def images_at(self, indices: torch.Tensor) -> torch.Tensor:
        """The points at `indices` (as an ImageDataset answers for its images)."""
        return self.points[indices.to(self.points.device)]

    @property
    def paired(self) -> bool:
        return False

    @property
    def sources(self) -> None:
        """Point data has no translation sources."""
        return None

    @property
    def class_names(self) -> list[str]:
        return []

    @property
    def num_classes(self) -> int:
        return 0

    def to_shape(self, resolution: int | None, channels: int | None) -> PointSet:
        """Points have no image size: only the call that changes nothing is accepted."""
        flags = (("--resolution", resolution), ("--channels", channels))
        given = [flag for flag, value in flags if value is not None]
        if given:
            raise GanforgeError(
                f"{'/'.join(given)}: point data ('{self.name}') has no image size or channels"
            )
        return self


def _mixture(name: str, centres: np.ndarray, std: float, n: int, seed: int) -> PointSet:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centres), size=n)
    points = centres[labels] + std * rng.standard_normal((n, centres.shape[1]))
    return PointSet(
        torch.from_numpy(points.astype(np.float32)),
        torch.from_numpy(labels.astype(np.int64)),
        name,
        modes=torch.from_numpy(centres.astype(np.float32)),
        mode_std=std,
    )


def _shape(name: str, points: np.ndarray, labels: np.ndarray, noise: float, rng) -> PointSet:
    """Two labelled curves, blurred by Gaussian noise."""
    points = points + noise * rng.standard_normal(points.shape)
    return PointSet(
        torch.from_numpy(points.astype(np.float32)), torch.from_numpy(labels.astype(np.int64)), name
    )


def ring8(n: int, seed: int) -> PointSet:
    angles = 2 * np.pi * np.arange(8) / 8
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _mixture("ring8", centres, RING8_STD, n, seed)


def grid25(n: int, seed: int) -> PointSet:
    axis = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    centres = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    return _mixture("grid25", centres, GRID25_STD, n, seed)


def spiral(n: int, seed: int) -> PointSet:
    """Two arms, opposite each other, whose radius grows linearly with the angle (an
    Archimedean spiral) to SPIRAL_RADIUS over SPIRAL_TURNS turns; label = arm."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    # angle ~ sqrt(uniform): the arc length grows with angle^2, so points spread evenly along it
    angle = 2 * np.pi * SPIRAL_TURNS * np.sqrt(rng.random(n))
    radius = SPIRAL_RADIUS * angle / (2 * np.pi * SPIRAL_TURNS)
    turned = angle + np.pi * labels
    points = np.stack([radius * np.cos(turned), radius * np.sin(turned)], axis=1)
    return _shape("spiral", points, labels, SPIRAL_NOISE, rng)


def moons(n: int, seed: int) -> PointSet:
    """scikit-learn's make_moons: upper half circle at the origin (label 0), lower half circle
    shifted to (1, 0.5) (label 1), in its coordinates (x in [-1, 2], y in [-0.5, 1])."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    t = np.pi * rng.random(n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    points = np.where(labels[:, None] == 0, upper, lower)
    return _shape("moons", points, labels, SHAPE_NOISE, rng)


def circles(n: int, seed: int) -> PointSet:
    """Two concentric circles: radius 1 (label 0) and 0.5 (label 1)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    t = 2 * np.pi * rng.random(n)
    radius = np.where(labels == 0, 1.0, 0.5)
    points = np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)
    return _shape("circles", points, labels, SHAPE_NOISE, rng)


POINT_DATASETS: dict[str, Callable[[int, int], PointSet]] = {
    "ring8": ring8,
    "grid25": grid25,
    "spiral": spiral,
    "moons": moons,
    "circles": circles,
}


def is_point_data(name: str) -> bool:
    """A built-in point dataset or a path ending in .csv, whether or not the file exists (so a
    missing file is reported by load_point_csv, not as an unknown dataset)."""
    return name in POINT_DATASETS or name.lower().endswith(".csv")


def load_point_dataset(name: str, split: str = "train") -> PointSet:
    """POINTS_PER_SPLIT points of a built-in distribution; each split has its own fixed seed."""
    if name not in POINT_DATASETS:
        raise GanforgeError(
            f"--data: '{name}' is not a point dataset ({', '.join(POINT_DATASETS)})"
        )
    if split not in SPLIT_SEEDS:
        raise GanforgeError(f"--data {name}: split '{split}' is not one of train, test")
    return POINT_DATASETS[name](POINTS_PER_SPLIT, SPLIT_SEEDS[split])


def load_point_csv(path: str | os.PathLike) -> PointSet:
    """A CSV of points: rows `x,y` or `x,y,label` (a whole number, -1 for none), an optional
    header row of names, blank lines ignored. float32 points; labels -1 without a third column."""
    file = _checked_file(path)
    table = _parse(file, path)
    if len(table) > MAX_POINTS:
        raise GanforgeError(f"'{path}': more than {MAX_POINTS:,} points")
    if len(table) < 2:
        raise GanforgeError(f"'{path}': {len(table)} point(s); a GAN needs at least 2")
    if table.shape[1] not in (2, 3):
        line, _ = _data_line(file, 0)
        raise GanforgeError(
            f"'{path}' line {line}: a row of {table.shape[1]} numbers; expected 2 (x,y) "
            "or 3 (x,y,label)"
        )
    fits = np.isfinite(table[:, :2]) & (np.abs(table[:, :2]) <= np.finfo(np.float32).max)
    bad_rows = np.flatnonzero(~fits.all(axis=1))
    if len(bad_rows):
        line, text = _data_line(file, int(bad_rows[0]))
        raise GanforgeError(
            f"'{path}' line {line}: '{text}' holds a value that is not a finite number "
            "(nan, inf, or beyond float32's range)"
        )
    points = table[:, :2].astype(np.float32)
    labels = np.full(len(table), -1, dtype=np.int64)
    if table.shape[1] == 3:
        labels = _labels(table[:, 2], file, path)
    return PointSet(
        torch.from_numpy(points),
        torch.from_numpy(labels),
        str(path),
        location=str(file.resolve()),
    )


def _checked_file(path: str | os.PathLike) -> Path:
    file = Path(path)
    if not file.exists():
        raise GanforgeError(f"--data: point file '{path}' not found")
    if file.is_dir():
        raise GanforgeError(f"--data: '{path}' is a folder; expected a CSV file of points")
    if not file.is_file():  # a device or a pipe: no size to bound, maybe no end
        raise GanforgeError(
            f"--data: '{path}' is not a regular file; expected a CSV file of points"
        )
    size = file.stat().st_size
    if size > MAX_POINT_FILE_BYTES:
        raise GanforgeError(
            f"'{path}': {size:,} bytes; a point file may hold at most "
            f"{MAX_POINT_FILE_BYTES:,} bytes"
        )
    return file


def _parse(file: Path, path: str | os.PathLike) -> np.ndarray:
    """float64 (rows, columns) by numpy's reader, at most MAX_POINTS + 1 rows; a row it cannot
    read is found again line by line, since numpy's row numbers skip blank lines unevenly."""
    try:
        with file.open(encoding="utf-8-sig") as handle:
            rows = _data_lines(handle)
            first = next(rows, None)
            if first is None:
                raise GanforgeError(f"'{path}' holds no points")
            texts = itertools.chain([first[1]], (text for _, text in rows))
            return np.loadtxt(texts, delimiter=",", comments=None, ndmin=2, max_rows=MAX_POINTS + 1)
    except UnicodeDecodeError:
        raise GanforgeError(f"'{path}' is not a UTF-8 text file") from None
    except OSError as exc:
        raise GanforgeError(f"cannot read '{path}': {exc.strerror or exc}") from None
    except ValueError as exc:
        raise GanforgeError(f"'{path}' {_first_bad_line(file, exc)}") from None


def _data_lines(handle) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of every row of data: blank lines and a header skipped."""
    numbered = ((number, line.strip()) for number, line in enumerate(handle, 1))
    rows = ((number, text) for number, text in numbered if text)
    first = next(rows, None)
    if first is not None and any(_is_number(field) for field in first[1].split(",")):
        yield first
    yield from rows


def _data_line(file: Path, row: int) -> tuple[int, str]:
    """The line number and text of data row `row` (0-based), for an error message."""
    with file.open(encoding="utf-8-sig") as handle:
        for index, numbered in enumerate(_data_lines(handle)):
            if index == row:
                return numbered
    raise AssertionError(f"row {row} is past the end of {file}")


def _first_bad_line(file: Path, exc: ValueError) -> str:
    """Where and why numpy could not read the table: a field that is not a number, or a row
    whose width differs from the first row's."""
    width = None
    with file.open(encoding="utf-8-sig") as handle:
        for number, text in _data_lines(handle):
            fields = text.split(",")
            for field in fields:
                if not _is_number(field):
                    hint = " (fields are separated by commas)" if " " in field.strip() else ""
                    return f"line {number}: '{field.strip()}' is not a number{hint}"
            if width is not None and len(fields) != width:
                return f"line {number}: {len(fields)} columns, but the first row has {width}"
            width = len(fields)
    return f"cannot be read as a table of numbers ({exc})"


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return "_" not in field  # Python reads 1_000; numpy does not


def _labels(column: np.ndarray, file: Path, path: str | os.PathLike) -> np.ndarray:
    """The third column as int64 labels: whole numbers from -1 (none) up to 2^31 - 1."""
    good = np.isfinite(column) & (column == np.round(column))
    good &= (column >= -1) & (column < 2**31)
    bad_rows = np.flatnonzero(~good)
    if len(bad_rows):
        line, text = _data_line(file, int(bad_rows[0]))
        raise GanforgeError(
            f"'{path}' line {line}: '{text}': the label (third column) must be a whole number "
            "from -1 (none) to 2^31 - 1"
        )
    return column.astype(np.int64)

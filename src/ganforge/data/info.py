"""`ganforge data info` and `ganforge data download`: look at a dataset before training on it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ganforge.bounds import MAX_GRID_BYTES, MAX_RESOLUTION, check_at_most, check_images
from ganforge.data import LoadOptions, is_point_data, load_points, open_dataset
from ganforge.data.cifar import CIFAR_DATASETS, MIRRORS
from ganforge.data.dataset import ImageDataset
from ganforge.data.download import ensure_files, mirrors_for
from ganforge.data.folder import ImageFolder
from ganforge.data.mnist import IDX_DATASETS, SPLITS
from ganforge.data.paired import load_paired_folder
from ganforge.errors import GanforgeError
from ganforge.report import save_images
from ganforge.report.lab_frame import save_points

GRID_SEED = 0
LISTED_CLASSES = 20


def dataset_info(
    name: str,
    *,
    data_root: str | Path | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    strict: bool = False,
    trust_pickle: bool = False,
    paired: bool = False,
    n: int = 64,
    out: str | Path | None = None,
) -> str:
    """Load `name` as training would and return a report: count, shape, classes, where it was
    read from, and every skipped file; with `out`, also write a grid of `n` of its images there
    (only when asked: nothing is written into the current folder unasked)."""
    if n < 1:
        raise GanforgeError(f"--n: must be at least 1, got {n}")
    if resolution is not None:
        check_at_most("--resolution", resolution, MAX_RESOLUTION)
    out = Path(out) if out is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report lists the skipped files itself
        if paired:
            return _paired_info(name, resolution, channels, strict, n, out)
        if is_point_data(name):
            return _point_info(name, data_root, resolution, channels, n, out)
        options = LoadOptions(data_root, trust_pickle=trust_pickle, progress=True)
        dataset = open_dataset(
            name, resolution=resolution, channels=channels, strict=strict, options=options
        )
    chosen = _sample_indices(len(dataset), n)
    pairs = isinstance(dataset, ImageDataset) and dataset.paired
    if out is not None:
        count = len(chosen) * (2 if pairs else 1)
        check_images("--n", count, dataset.resolution, dataset.channels, MAX_GRID_BYTES)
        images = dataset.images_at(chosen)
        if pairs:  # a translator's data: each source left of its image
            images = torch.cat([dataset.sources_at(chosen), images], dim=-1)
        save_images(np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy()), out)
    held = "in memory (decoded once)" if isinstance(dataset, ImageDataset) else "streamed"
    lines = [
        f"dataset   {dataset.name}",
        f"files     {dataset.location}",
        f"images    {len(dataset)}, uint8, {_shape(dataset)} (channels x height x width)",
        f"classes   {_classes(dataset)}",
        f"held      {held}",
        *_skipped(dataset.skipped),
    ]
    if out is not None:
        what = "pairs, source left of image" if pairs else "images"
        lines.append(f"grid      {out} ({len(chosen)} {what})")
    return "\n".join(lines)


def download_dataset(name: str, data_root: str | Path | None = None) -> list[Path]:
    """Fetch and verify every official file of dataset `name` (both splits) into the data root."""
    if name in IDX_DATASETS:
        spec = IDX_DATASETS[name]
        files = [file for split in SPLITS for file in spec.files(split)]
        return ensure_files(name, files, mirrors_for(name, spec.mirrors), data_root)
    if name in CIFAR_DATASETS:
        spec = CIFAR_DATASETS[name]
        return ensure_files(name, [spec.binary], mirrors_for(name, MIRRORS), data_root)
    known = ", ".join([*IDX_DATASETS, *CIFAR_DATASETS])
    raise GanforgeError(f"--data: '{name}' has no files to download (these do: {known})")


def _paired_info(
    name: str,
    resolution: int | None,
    channels: int | None,
    strict: bool,
    n: int,
    out: Path | None,
) -> str:
    pairs = load_paired_folder(name, resolution, channels, strict=strict)
    chosen = _sample_indices(len(pairs), n)
    _, c, h, w = pairs.images_a.shape
    if out is not None:
        check_images("--n", 2 * len(chosen), max(h, w), c, MAX_GRID_BYTES)
        side_by_side = torch.cat([pairs.images_a[chosen], pairs.images_b[chosen]], dim=-1)
        save_images(side_by_side.permute(0, 2, 3, 1).contiguous().numpy(), out)
    lines = [
        f"pairs     {len(pairs)} in '{pairs.name}' ({pairs.layout})",
        f"images    A and B: uint8, {c} x {h} x {w} (channels x height x width)",
        *_skipped(pairs.skipped),
    ]
    if out is not None:
        lines.append(f"grid      {out} ({len(chosen)} pairs, A left of B)")
    return "\n".join(lines)


def _point_info(
    name: str,
    data_root: str | Path | None,
    resolution: int | None,
    channels: int | None,
    n: int,
    out: Path | None,
) -> str:
    points = load_points(name, data_root)
    points = points.to_shape(resolution, channels)  # refuses image options, naming them
    low, high = points.points.min(0).values.tolist(), points.points.max(0).values.tolist()
    ranges = ", ".join(f"[{a:.3g}, {b:.3g}]" for a, b in zip(low, high))
    modes = (
        f"{len(points.modes)} Gaussians, std {points.mode_std:g} (eval counts them)"
        if points.modes is not None
        else "none (a shape: eval has no modes to count)"
    )
    lines = [
        f"dataset   {points.name}",
        f"files     {points.location or 'generated (a fixed seed per split)'}",
        f"points    {len(points)}, float32, {points.dims}-D, within {ranges}",
        f"modes     {modes}",
    ]
    if out is not None:
        chosen = _sample_indices(len(points), n)
        shown = points.points[chosen].numpy()
        save_points(shown, out, real=shown)
        lines.append(f"grid      {out} ({len(chosen)} points)")
    return "\n".join(lines)


def _sample_indices(size: int, n: int) -> torch.Tensor:
    """A seeded sample of `n` indices in dataset order: the same grid every time."""
    generator = torch.Generator().manual_seed(GRID_SEED)
    return torch.randperm(size, generator=generator)[:n].sort().values


def _shape(dataset: ImageDataset | ImageFolder) -> str:
    return f"{dataset.channels} x {dataset.resolution} x {dataset.resolution}"


def _classes(dataset: ImageDataset | ImageFolder) -> str:
    if not dataset.class_names:
        return "none (unlabelled)"
    counts = torch.bincount(dataset.labels[dataset.labels >= 0], minlength=dataset.num_classes)
    shown = [f"{name} ({int(c)})" for name, c in zip(dataset.class_names, counts)]
    more = len(shown) - LISTED_CLASSES
    listing = ", ".join(shown[:LISTED_CLASSES]) + (f", ... and {more} more" if more > 0 else "")
    return f"{dataset.num_classes}: {listing}"


def _skipped(skipped: list[str]) -> list[str]:
    return [f"skipped   {len(skipped)} files", *(f"  {entry}" for entry in skipped)]

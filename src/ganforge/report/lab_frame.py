"""One frame of the mode-collapse lab, as GAN Lab (Kahng et al. 2019) draws it: D's decision
over the plane as the background (green: D says real, purple: fake), the real density, G's
samples, and arrows showing where G's loss moves each sample."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from ganforge.atomic import atomic_path
from ganforge.errors import GanforgeError

FRAME_INCHES, FRAME_DPI = 4.0, 90  # 360 x 360 pixels
MARGIN = 0.25  # the view extends the real data's box by this share on each side
ARROW_SHARE = 0.08  # the longest arrow spans this share of the view


def view_of(real: np.ndarray) -> tuple[float, float, float, float]:
    """A square view (x0, x1, y0, y1) around the real points' first two coordinates, the
    same in every frame of a run so that frames compare."""
    low, high = real[:, :2].min(axis=0), real[:, :2].max(axis=0)
    centre, half = (low + high) / 2, float(max(high - low)) / 2 * (1 + MARGIN) or 1.0
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def draw_lab_frame(
    real: np.ndarray,
    samples: np.ndarray,
    view: tuple[float, float, float, float],
    decision: np.ndarray | None = None,
    arrow_from: np.ndarray | None = None,
    arrow_direction: np.ndarray | None = None,
    title: str = "",
) -> np.ndarray:
    """The frame as uint8 (H, W, 3): `decision` (D's probability of real on a square grid of
    `view`, rows from the bottom), `real` and `samples` points (N, >=2), and arrows at
    `arrow_from` along `arrow_direction` scaled so the longest spans ARROW_SHARE of the view."""
    fig = Figure(figsize=(FRAME_INCHES, FRAME_INCHES), dpi=FRAME_DPI)  # no pyplot: no backend
    ax = fig.subplots()
    x0, x1, y0, y1 = view
    if decision is not None:
        ax.imshow(
            decision,
            origin="lower",
            extent=view,
            cmap="PiYG",
            vmin=0,
            vmax=1,
            alpha=0.55,
            interpolation="bilinear",
        )
    ax.scatter(real[:, 0], real[:, 1], s=16, c="#1b7837", alpha=0.15, linewidths=0, label="real")
    ax.scatter(
        samples[:, 0], samples[:, 1], s=4, c="#762a83", alpha=0.7, linewidths=0, label="G(z)"
    )
    if arrow_from is not None and arrow_direction is not None and len(arrow_from):
        lengths = np.linalg.norm(arrow_direction[:, :2], axis=1)
        scale = ARROW_SHARE * (x1 - x0) / max(float(lengths.max()), 1e-12)
        ax.quiver(
            arrow_from[:, 0],
            arrow_from[:, 1],
            arrow_direction[:, 0] * scale,
            arrow_direction[:, 1] * scale,
            angles="xy",
            scale_units="xy",
            scale=1,
            width=0.004,
            color="#40004b",
            alpha=0.8,
        )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    ax.legend(loc="upper right", fontsize=7, markerscale=3, framealpha=0.8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return figure_pixels(fig, FRAME_DPI)


def figure_pixels(fig, dpi: int) -> np.ndarray:
    """A matplotlib figure as uint8 RGB pixels (H, W, 3), rendered at `dpi`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"))


def save_points(
    points: np.ndarray,
    path: str | Path,
    real: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write a generator's points by file type: .npz -> `points` float32 (N, D) (and the
    `extra` arrays that say how they were drawn); .csv -> one point per row under a header;
    .png -> a scatter over the `real` points."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, points=points.astype(np.float32), **(extra or {}))
    elif suffix == ".csv":
        header = ",".join("xyzw"[i] if i < 4 else f"x{i}" for i in range(points.shape[1]))
        with atomic_path(path) as tmp:
            np.savetxt(tmp, points, delimiter=",", header=header, comments="", fmt="%.7g")
    elif suffix == ".png":
        shown = real if real is not None else points
        frame = draw_lab_frame(shown, points, view_of(shown))
        with atomic_path(path) as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")
    else:
        raise GanforgeError(f"--out: '{path}' must end in .npz, .csv or .png for a run of points")
    return path

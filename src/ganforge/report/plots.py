"""Training curves from metrics.jsonl records, as one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ganforge.atomic import atomic_path  # noqa: E402
from ganforge.config import EVAL_METRICS  # noqa: E402

PANELS = (
    ("Losses", ("loss_d", "loss_g", "loss_l1", "loss_d_aux", "loss_g_aux")),
    ("VAE loss per image (recon + beta * KL)", ("loss_vae", "recon", "kl")),
    ("Discriminator outputs", ("d_real", "d_fake")),
    (
        "Gradient norms",
        (
            "grad_norm_discriminator",
            "grad_norm_generator",
            "grad_norm_encoder",
            "grad_norm_decoder",
        ),
    ),
    ("Discriminator accuracy", ("d_accuracy",)),
    ("Diversity (doctor)", ("diversity", "diversity_real")),
    ("Penalties (--gp, --r1)", ("gp", "r1")),
    # one panel per measured metric: their scales differ (an accuracy next to an FID)
    *((f"Evaluation: {m} (--eval-every)", (f"eval_{m}",)) for m in EVAL_METRICS),
)
LOG_SCALE_PANELS = ("Gradient norms",)
_MAX_COLUMNS = 4  # more panels wrap onto more rows


def curve_panels(records: list[dict]) -> list[tuple[str, dict[str, list[tuple[float, float]]]]]:
    """The panels worth drawing, in PANELS order: (title, {key: (step, value) points}) for each
    group with a finite value in the records; a run without --gp or the doctor has no such
    panel."""
    panels = []
    for name, keys in PANELS:
        series = {key: points for key in keys if (points := finite_points(records, key))}
        if series:
            panels.append((name, series))
    return panels


def plot_training_curves(records: list[dict], path: str | Path, title: str = "") -> Path | None:
    """One panel per group of logged series (curve_panels), at most four to a row; None
    when there is nothing to draw."""
    panels = curve_panels(records)
    if not panels:
        return None
    rows = math.ceil(len(panels) / _MAX_COLUMNS)
    columns = math.ceil(len(panels) / rows)  # 5 panels: 3 + 2, not 4 + 1
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis, (name, series) in zip(axes.flat, panels):
        for key, points in series.items():
            axis.plot(*zip(*points), label=key, linewidth=1.4)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        if name in LOG_SCALE_PANELS:
            axis.set_yscale("log")
        else:  # an FID of 1400.3 reads as such, not as "+1.4e3" and 0.3
            axis.ticklabel_format(axis="y", useOffset=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return Path(path)


def finite_points(records: list[dict], key: str) -> list[tuple[float, float]]:
    """(step, value) of the records holding a finite number under `key`: a metrics.jsonl
    edited by hand or damaged on disk may hold anything there."""
    points = []
    for record in records:
        step, value = record.get("step"), record.get(key)
        if _finite(step) and _finite(value):
            points.append((float(step), float(value)))
    return points


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float range
        return False

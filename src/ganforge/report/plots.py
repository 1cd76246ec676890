"""Training curves from metrics.jsonl records, as one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ganforge.atomic import atomic_path  # noqa: E402

PANELS = (
    ("Losses", ("loss_d", "loss_g")),
    ("Discriminator outputs", ("d_real", "d_fake")),
    ("Gradient norms", ("grad_norm_discriminator", "grad_norm_generator")),
    ("Discriminator accuracy", ("d_accuracy",)),
    (
        "Evaluation (--eval-every)",
        tuple(
            f"eval_{m}"
            for m in ("fid", "kid", "precision", "recall", "density", "coverage")
            + ("kl_to_uniform", "is")
        ),
    ),
)


def plot_training_curves(records: list[dict], path: str | Path, title: str = "") -> Path | None:
    """One panel per group of logged series; series absent from the records are left out."""
    series = {key: finite_points(records, key) for _, keys in PANELS for key in keys}
    panels = [(name, [k for k in keys if series[k]]) for name, keys in PANELS]
    panels = [(name, keys) for name, keys in panels if keys]
    if not records or not panels:
        return None
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for axis, (name, keys) in zip(axes[0], panels):
        for key in keys:
            axis.plot(*zip(*series[key]), label=key, linewidth=1.4)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        if name == "Gradient norms":
            axis.set_yscale("log")
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

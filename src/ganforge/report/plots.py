"""Training curves from metrics.jsonl records, as one PNG."""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image

from ganforge.atomic import atomic_path
from ganforge.i18n import N_, _
from ganforge.metrics.catalog import eval_metric_names

Panel = tuple[str, tuple[str, ...]]  # (title, the logged statistics drawn on it)
EVAL_PANEL = N_("Evaluation: {metric} (--eval-every)")  # one panel per evaluated metric


def panel_title(title: str) -> str:
    """A panel's title (as run_panels names it: in English) in the current language."""
    for metric in eval_metric_names():
        if title == EVAL_PANEL.format(metric=metric):
            return _(EVAL_PANEL).format(metric=metric)
    return _(title)


def run_panels(family) -> tuple[Panel, ...]:
    """The curve panels of a run of `family` (a models.ModelFamily, perhaps described on the
    meta device): its own statistics as it groups them, then what every run logs — the
    gradient norm of each network, the doctor's diversity, one panel per evaluated metric
    (their scales differ: an accuracy next to an FID). Titles in English, as code and
    `Run.show(panels=...)` name them; panel_title() says them in the current language."""
    return (
        *family.curve_panels,
        (N_("Gradient norms"), tuple(f"grad_norm_{name}" for name in family.networks)),
        (N_("Diversity (doctor)"), ("diversity", "diversity_real")),
        *((EVAL_PANEL.format(metric=m), (f"eval_{m}",)) for m in eval_metric_names()),
    )


LOG_SCALE_PANELS = ("Gradient norms",)  # titles as defined (English)
_MAX_COLUMNS = 4  # more panels wrap onto more rows
CURVES_DPI = 110


def curve_panels(
    records: list[dict], panels: tuple[Panel, ...]
) -> list[tuple[str, dict[str, list[tuple[float, float]]]]]:
    """The `panels` (run_panels) worth drawing, in order: (title, {key: (step, value) points})
    for each with a finite value in the records; a run without --gp or the doctor has no
    such panel."""
    drawn = []
    for name, keys in panels:
        series = {key: points for key in keys if (points := finite_points(records, key))}
        if series:
            drawn.append((name, series))
    return drawn


def plot_training_curves(
    records: list[dict], path: str | Path, panels: tuple[Panel, ...], title: str = ""
) -> Path | None:
    """One picture of the `panels` (run_panels) that have logged series (curve_panels), at
    most four to a row; None when there is nothing to draw."""
    figure = draw_training_curves(records, panels, title)
    if figure is None:
        return None
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=CURVES_DPI)
    return Path(path)


def curves_image(
    records: list[dict], panels: tuple[Panel, ...], title: str = ""
) -> Image.Image | None:
    """The picture plot_training_curves writes, as a PIL image (for a notebook or the docs
    build); None when there is nothing to draw."""
    figure = draw_training_curves(records, panels, title)
    if figure is None:
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CURVES_DPI)
    buffer.seek(0)
    image = Image.open(buffer)
    image.load()
    return image


def draw_training_curves(
    records: list[dict], panels: tuple[Panel, ...], title: str = ""
) -> Figure | None:
    """The matplotlib figure of the `panels` worth drawing (None: none is), titles in the
    current language (ganforge.set_language). A bare Figure, not pyplot's: nothing global
    changes (a notebook keeps its inline backend) and nothing needs closing."""
    panels = curve_panels(records, panels)
    if not panels:
        return None
    rows = math.ceil(len(panels) / _MAX_COLUMNS)
    columns = math.ceil(len(panels) / rows)  # 5 panels: 3 + 2, not 4 + 1
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis, (name, series) in zip(axes.flat, panels):
        for key, points in series.items():
            axis.plot(*zip(*points), label=key, linewidth=1.4)
        axis.set_title(panel_title(name))
        axis.set_xlabel(_("step"))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        if name in LOG_SCALE_PANELS:
            axis.set_yscale("log")
        else:  # an FID of 1400.3 reads as such, not as "+1.4e3" and 0.3
            axis.ticklabel_format(axis="y", useOffset=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


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

"""`ganforge compare RUN_A RUN_B ...`: several runs measured the same way, side by side.

Each run is evaluated by `evaluate_run` with the same samples count, seed, metrics and feature
extractor (loaded once), against the same real data: the numbers are those `ganforge eval`
gives with the same settings. Runs on different data, resolutions or channels are refused (their
metrics would not be comparable). Writes DIR/compare.md (the table, grids as PNG files next to
it), DIR/compare.html (self-contained: grids as base64 PNG) and DIR/compare.json (every number).
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from ganforge.atomic import atomic_write_text
from ganforge.errors import GanforgeError
from ganforge.evaluate import BIAS_NOTE, evaluate_run, parse_metrics
from ganforge.i18n import _, current_language
from ganforge.metrics import load_extractor
from ganforge.metrics.catalog import get_metric, list_metrics
from ganforge.metrics.registry import default_extractor
from ganforge.models import model_kind
from ganforge.report.grid import image_grid, save_images
from ganforge.report.html import data_uri
from ganforge.run import Run

DEFAULT_METRICS = ("fid", "pr", "dc", "modes")
GRID_SAMPLES = 64


def check_comparable(runs: Sequence[Run]) -> None:
    """A one-line error unless every run was trained on the same data, resolution, channels."""
    if len(runs) < 2:
        raise GanforgeError("compare: give two or more runs")
    first = runs[0]

    def what(run: Run) -> tuple:
        return (run.config.data, run.config.resolution, run.config.channels)

    for run in runs:
        if model_kind(run.config.model).translator:
            raise GanforgeError(
                f"compare: run '{run.path}' is a translator; compare its L1/PSNR/SSIM with "
                "`ganforge eval`"
            )
        if what(run) != what(first):
            data, res, ch = what(run)
            data0, res0, ch0 = what(first)
            raise GanforgeError(
                f"compare: run '{run.path}' is on {data} at {res}px, {ch} channel(s), but run "
                f"'{first.path}' on {data0} at {res0}px, {ch0} channel(s): compare runs of the "
                "same data"
            )


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Each run's folder name, or its whole path where two names clash."""
    names = [run.path.name for run in runs]
    return [n if names.count(n) == 1 else str(r.path) for n, r in zip(names, runs)]


def compare_runs(
    runs: Sequence[str | Path | Run],
    *,
    n: int = 10000,
    metrics: str | Sequence[str] | None = None,
    extractor: str | Path | None = None,
    seed: int = 0,
    out: str | Path = "compare",
    device: str = "cpu",
    progress: bool = False,
    inception_weights: str | Path | None = None,
) -> dict:
    """Evaluate `runs` alike and write the comparison into `out`. Returns {"runs": labels,
    "results": evaluate_run results, "markdown": the table, "files": paths written}."""
    runs = [run if isinstance(run, Run) else Run(run) for run in runs]
    check_comparable(runs)
    config = runs[0].config
    model = load_extractor(
        extractor or default_extractor(config.channels, config.data),
        device=device,
        inception_weights=inception_weights,
    )
    notes = [BIAS_NOTE]
    if metrics is None:
        chosen = DEFAULT_METRICS if model.num_classes else DEFAULT_METRICS[:-1]
        if not model.num_classes:
            skipped = _("modes skipped: extractor '{extractor}' has no classifier head")
            notes.append(skipped.format(extractor=model.name))
    else:
        chosen = parse_metrics(metrics)
    results = [
        evaluate_run(
            run,
            n=n,
            metrics=chosen,
            extractor=model,
            seed=seed,
            device=device,
            write=False,
            progress=progress,
        )
        for run in runs
    ]
    labels = run_labels(runs)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanforgeError(f"--out: cannot create '{out}': {exc.strerror}") from None
    grids = [run.sample(GRID_SAMPLES, seed=seed) for run in runs]
    grid_files = [save_images(grid, out / f"samples-{i + 1}.png") for i, grid in enumerate(grids)]
    header = _header(results[0], n, seed)
    table = markdown_table(labels, runs, results)
    lines = [f"# {' vs '.join(labels)}", "", header, "", table, ""]
    lines += [f"![{label}]({path.name})" for label, path in zip(labels, grid_files)]
    lines += ["", *notes]
    files = {
        "markdown": out / "compare.md",
        "html": out / "compare.html",
        "json": out / "compare.json",
    }
    atomic_write_text(files["markdown"], "\n".join(lines) + "\n")
    page = html_page(labels, runs, results, grids, header, notes)
    atomic_write_text(files["html"], page)
    atomic_write_text(files["json"], json.dumps(dict(zip(labels, results)), indent=2) + "\n")
    return {"runs": labels, "results": results, "markdown": table, "files": files}


def _header(result: dict, n: int, seed: int) -> str:
    ex = result["extractor"]
    accuracy = (
        _(", test accuracy {accuracy:.1%}").format(accuracy=ex["test_accuracy"])
        if "test_accuracy" in ex
        else ""
    )
    return _(
        "{n} samples per run (seed {seed}) vs {real} real images of {dataset}; features: "
        "{extractor}{accuracy}"
    ).format(
        n=n,
        seed=seed,
        real=result["n_real"],
        dataset=result["dataset"],
        extractor=ex["name"],
        accuracy=accuracy,
    )


def format_value(key: str, values: dict) -> str:
    """A metric as `ganforge eval` prints it."""
    return get_metric(key).format(values)


def table_rows(runs: Sequence[Run], results: Sequence[dict]) -> list[tuple[str, str, list, int]]:
    """(label, meaning, cells, index of the best run or -1) for each row of the comparison."""
    rows: list[tuple[str, str, list, int]] = [
        ("model", "", [run.config.model for run in runs], -1),
        ("step", "", [str(r["step"]) for r in results], -1),
    ]
    values = [r["metrics"] for r in results]
    for metric in list_metrics():
        if not all(metric.name in v for v in values):
            continue
        numbers = [v[metric.name] for v in values]
        best = -1
        if metric.better and metric.highlight and len(set(numbers)) > 1:
            best = numbers.index(metric.best_of(numbers))
        cells = [metric.format(v) for v in values]
        rows.append((metric.label, _(metric.description), cells, best))
    return rows


def markdown_table(labels: Sequence[str], runs: Sequence[Run], results: Sequence[dict]) -> str:
    """The metrics side by side, best of each row in bold."""
    lines = [
        "| metric | " + " | ".join(labels) + " | |",
        "|---|" + "---:|" * len(labels) + "---|",
    ]
    for label, meaning, cells, best in table_rows(runs, results):
        shown = [f"**{c}**" if i == best else c for i, c in enumerate(cells)]
        lines.append(f"| {label} | " + " | ".join(shown) + f" | {meaning} |")
    return "\n".join(lines)


def _png_uri(images) -> str:
    grid = image_grid(images)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return data_uri(buffer.getvalue(), "image/png")


def html_page(labels, runs, results, grids, header: str, notes: Sequence[str]) -> str:
    """One self-contained page: the table, then each run's sample grid."""
    esc = html.escape
    head = "".join(f"<th>{esc(label)}</th>" for label in labels)
    body = []
    for label, meaning, cells, best in table_rows(runs, results):
        tds = "".join(
            f"<td class='num{' best' if i == best else ''}'>{esc(c)}</td>"
            for i, c in enumerate(cells)
        )
        body.append(f"<tr><th>{esc(label)}</th>{tds}<td class='m'>{esc(meaning)}</td></tr>")
    alt, caption = _("samples of {run}"), _("{run}: {model}, step {step}")
    figures = "".join(
        f"<figure><img src='{_png_uri(grid)}' alt='{esc(alt.format(run=label))}'>"
        f"<figcaption>{esc(caption.format(run=label, model=run.config.model, step=r['step']))}"
        "</figcaption></figure>"
        for label, run, r, grid in zip(labels, runs, results, grids)
    )
    title, metric_heading = _(" vs ").join(labels), _("metric")
    samples = _("Samples ({n} per run, seed {seed})").format(
        n=GRID_SAMPLES, seed=results[0]["seed"]
    )
    return f"""<!doctype html>
<html lang="{current_language()}"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}
th,td{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}}
td.best{{font-weight:bold;background:#eef7ee}}
td.m{{color:#777;font-size:.9em}}
.grids{{display:flex;flex-wrap:wrap;gap:2em}}
figure{{margin:0}} img{{image-rendering:pixelated;max-width:520px}}
figcaption{{text-align:center;margin-top:.4em}}
.note{{color:#777;font-size:.9em}}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{esc(header)}</p>
<table><tr><th>{esc(metric_heading)}</th>{head}<th></th></tr>
{"".join(body)}
</table>
<h2>{esc(samples)}</h2>
<div class="grids">{figures}</div>
{"".join(f"<p class='note'>{esc(translated)}</p>" for translated in map(_, notes))}
</body></html>
"""

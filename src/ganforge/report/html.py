"""`ganforge report RUN`: one self-contained HTML page about a run, to open in a browser.

Everything is inside the file (figures and images as base64 data URIs), so it can be mailed or
archived alone. It shows: the losses and D's outputs with the diagnosis events on the same
timeline, gradient norms, sample diversity, the evaluation metric, the fixed-noise sample grid
over training (and a GIF of it), the events with their evidence and remedies, the last
`ganforge eval` and the config.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from matplotlib.figure import Figure

from ganforge.atomic import atomic_write_text
from ganforge.explanations import SAID, explanation
from ganforge.i18n import _, current_language
from ganforge.models import describe_model
from ganforge.report.gif import grids_to_gif
from ganforge.report.plots import LOG_SCALE_PANELS, curve_panels, panel_title, run_panels
from ganforge.run import SAMPLES_DIR, Run

REPORT_FILE = "report.html"
EVENTS_FILE = "events.jsonl"
GIF_FILE = "progress.gif"
EVENT_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def read_events(run_dir: Path) -> list[dict]:
    """events.jsonl records (step, event, evidence, remedies); unreadable lines are skipped."""
    path = run_dir / EVENTS_FILE
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record.get("event"):
            events.append(record)
    return events


def _figure_png(title: str, series: dict, log_scale: bool, events: list[dict]) -> str:
    figure = Figure(figsize=(7.0, 3.0))  # no pyplot: a notebook's backend stays its own
    axis = figure.subplots()
    for key, points in series.items():
        axis.plot(*zip(*points), label=key, linewidth=1.4)
    kinds = sorted({e["event"] for e in events})
    for event in events:
        colour = EVENT_COLOURS[kinds.index(event["event"]) % len(EVENT_COLOURS)]
        axis.axvline(event["step"], color=colour, alpha=0.5, linewidth=1, linestyle="--")
    for kind in kinds:  # one legend entry per event kind
        colour = EVENT_COLOURS[kinds.index(kind) % len(EVENT_COLOURS)]
        axis.plot([], [], color=colour, linestyle="--", label=_("event: {kind}").format(kind=kind))
    axis.set_title(title, fontsize=11)
    axis.set_xlabel(_("step"))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="best")
    if log_scale:
        axis.set_yscale("log")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return data_uri(buffer.getvalue(), "image/png")


def data_uri(data: bytes, mime: str) -> str:
    """`data` inline in a page (figures, grids, GIFs): the page stays one file."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _evidence_text(evidence) -> str:
    if not isinstance(evidence, dict):
        return html.escape(str(evidence))
    words = [explanation(evidence)] if "explanation" in evidence else []
    words += [str(evidence[k]) for k in ("summary", "why") if k in evidence]
    numbers = [
        f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
        for k, v in evidence.items()
        if k not in ("explanation", "summary", "why", SAID)
    ]
    return html.escape(" ".join(words) + (f" ({', '.join(numbers)})" if numbers else ""))


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sample_grids(run_dir: Path) -> list[tuple[int, Path]]:
    grids = []
    for path in sorted((run_dir / SAMPLES_DIR).glob("step_*.png")):
        try:
            grids.append((int(path.stem.split("_")[1]), path))
        except (IndexError, ValueError):
            continue
    return sorted(grids)


def build_report(run: Run | str | Path, out: str | Path | None = None) -> Path:
    """Write RUN/report.html (and RUN/samples/progress.gif); returns the report's path."""
    run = run if isinstance(run, Run) else Run(run)
    run_dir = run.path
    records, events = run.metrics(), read_events(run_dir)
    config = run.config
    sections = []

    figures = []
    for title, series in curve_panels(records, run_panels(describe_model(config))):
        log_scale = title in LOG_SCALE_PANELS
        shown = panel_title(title)
        figures.append(
            f'<img class="fig" alt="{html.escape(shown)}" '
            f'src="{_figure_png(shown, series, log_scale, events)}">'
        )
    no_metrics = _("No metrics recorded yet.")
    losses_note = _(
        "The losses of a GAN do not say when its samples are good: judge by the evaluation "
        "metric and the samples below."
    )
    sections.append(
        "<h2>"
        + _("Training curves")
        + "</h2>"
        + ("".join(figures) if figures else f"<p>{no_metrics}</p>")
        + f"<p class=note>{losses_note}</p>"
    )

    grids = _sample_grids(run_dir)
    if grids:
        gif = grids_to_gif(
            [p for _, p in grids],
            run_dir / SAMPLES_DIR / GIF_FILE,
            captions=[_("step {step:,}").format(step=step) for step, _path in grids],
        )
        caption = _("step {step}")
        cells = "".join(
            f'<figure><img class="grid" src="{data_uri(p.read_bytes(), "image/png")}">'
            f"<figcaption>{caption.format(step=step)}</figcaption></figure>"
            for step, p in grids
        )
        gif_caption = _("the same noise across training ({file})")
        animation = (
            f'<figure><img class="gif" src="{data_uri(gif.read_bytes(), "image/gif")}">'
            f"<figcaption>"
            f"{html.escape(gif_caption.format(file=gif.relative_to(run_dir)))}"
            f"</figcaption></figure>"
            if gif
            else ""
        )
        sections.append(
            "<h2>" + _("Samples over training (fixed noise)") + f"</h2>{animation}"
            f'<div class="grids">{cells}</div>'
        )

    if events:
        rows = [
            (
                str(e["step"]),
                f"<b>{html.escape(str(e['event']))}</b>",
                _evidence_text(e.get("evidence", {})),
                html.escape(", ".join(map(str, e.get("remedies", []) or []))),
            )
            for e in events
        ]
        sections.append(
            "<h2 id=diagnosis>"
            + _("Diagnosis: {count} event(s)").format(count=len(events))
            + "</h2>"
            + _table(rows, (_("step"), _("event"), _("evidence"), _("remedies")))
        )
    else:
        no_events = _("No events were recorded.")
        sections.append("<h2 id=diagnosis>" + _("Diagnosis") + f"</h2><p>{no_events}</p>")

    eval_file = run_dir / "eval.json"
    if eval_file.is_file():
        try:
            result = json.loads(eval_file.read_text(encoding="utf-8"))
            values = result.get("metrics", {})
            rows = [
                (html.escape(k), html.escape(f"{v:.5g}" if isinstance(v, float) else str(v)))
                for k, v in values.items()
                if not isinstance(v, list)
            ]
            if result.get("task") == "translation":  # a translator: on held-out pairs
                compared = _("{n} held-out pairs of {pairs}").format(
                    n=result.get("n_pairs"), pairs=result.get("pairs")
                )
            else:
                compared = _("{n} samples, extractor {extractor}").format(
                    n=result.get("n_fake"), extractor=result.get("extractor", {}).get("name")
                )
            heading = _("Last evaluation (step {step}, {compared})").format(
                step=result.get("step"), compared=compared
            )
            sections.append(
                f"<h2>{html.escape(heading)}</h2>"
                + _table(rows, (_("metric"), _("value")))
                + "".join(
                    f"<p class=note>{html.escape(_(str(n)))}</p>" for n in result.get("notes", [])
                )
            )
        except (ValueError, AttributeError, TypeError):
            unreadable = _("eval.json is unreadable.")
            sections.append("<h2>" + _("Last evaluation") + f"</h2><p>{unreadable}</p>")

    rows = [(html.escape(k), html.escape(json.dumps(v))) for k, v in config.to_dict().items()]
    sections.append(
        "<details><summary>"
        + _("Config")
        + "</summary>"
        + _table(rows, (_("option"), _("value")))
        + "</details>"
    )
    sections.insert(0, summary_box(run, records, events, eval_file.is_file()))

    title = _("{model} on {data} — step {step}").format(
        model=config.model, data=config.data, step=run.step
    )
    page = PAGE.format(
        lang=current_language(),
        heading=html.escape(_("ganforge report: {title}").format(title=title)),
        title=html.escape(title),
        run=html.escape(str(run_dir)),
        body="\n".join(sections),
        footer=html.escape(_("Written by ganforge report.")),
    )
    path = Path(out) if out else run_dir / REPORT_FILE
    atomic_write_text(path, page)
    return path


PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<title>{heading}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 1.5rem; }} h2 {{ font-size: 1.15rem; margin-top: 2rem; }}
.fig {{ width: 49%; min-width: 420px; }}
.grids {{ display: flex; flex-wrap: wrap; gap: .5rem; }}
.grids figure {{ margin: 0; }} .grid {{ width: 160px; image-rendering: pixelated; }}
.gif {{ width: 320px; image-rendering: pixelated; }}
figcaption {{ font-size: .8rem; color: #555; text-align: center; }}
table {{ border-collapse: collapse; font-size: .9rem; }}
td, th {{ border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }}
.note {{ color: #555; font-size: .9rem; }}
.summary {{ border: 1px solid #ccd; border-radius: 6px; background: #f6f7fb; padding: .5rem 1rem; }}
.summary li {{ margin: .2rem 0; }} .ok {{ color: #2a7d2a; }} .problem {{ color: #b22; }}
</style></head>
<body><h1>{title}</h1><p class=note>{run}</p>
{body}
<p class=note>{footer}</p></body></html>
"""


def summary_box(run: Run, records: list[dict], events: list[dict], evaluated: bool) -> str:
    """The page's first lines: where training ended, the best checkpoint, the doctor's verdict
    (problems by kind, or none), and what to do next."""
    config = run.config
    items = [_("Step {step} of {steps}.").format(step=run.step, steps=config.steps)]
    best = [r for r in records if r.get("eval_best") is True]
    if best:
        metric = f"eval_{config.eval_metric}"
        value = best[-1].get(metric)
        score = f" ({config.eval_metric} {value:.4g})" if isinstance(value, (int, float)) else ""
        items.append(
            _("Best checkpoint: step {step}{score}, checkpoints/best.safetensors.").format(
                step=best[-1]["step"], score=score
            )
        )
    if events:
        first = {}
        for event in events:
            first.setdefault(event["event"], event["step"])
        since = _("from step {step}")
        named = ", ".join(f"{kind} ({since.format(step=step)})" for kind, step in first.items())
        verdict = _("The doctor found {count} kind(s) of problem: {kinds}.").format(
            count=len(first), kinds=named
        )
        items.append(
            f"<span class=problem>{html.escape(verdict)}</span> "
            + '<a href="#diagnosis">'
            + _("Diagnosis")
            + "</a>"
        )
    elif config.doctor:
        items.append("<span class=ok>" + _("The doctor found no problems.") + "</span>")
    else:
        items.append(_("The doctor was off (--no-doctor)."))
    if not evaluated:
        hint = _("Measure the samples: {command}").format(command=f"ganforge eval {run.path}")
        items.append(html.escape(hint))
    body = "".join(f"<li>{item}</li>" for item in items)
    return "<div class=summary><b>" + _("Summary") + f"</b><ul>{body}</ul></div>"

"""What the Lab tab shows of a training besides its frame: small curves of the records (the
losses, the modes G covers) and the doctor's events in words, each with what to try."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ganforge.app.explorer import markdown_text
from ganforge.report.lab_frame import figure_pixels

CURVES_INCHES, CURVES_DPI = (7.0, 2.3), 90  # 630 x 207 pixels: beside the 360-pixel frame
EVENTS_SHOWN = 12  # the newest events listed (the count says how many there are)
NO_EVENTS = "No events yet: the doctor checks each record (every 25 steps) after its warm-up."


def draw_curves(records: list[dict], events: list[dict], title: str = "") -> np.ndarray:
    """Two panels, uint8 (H, W, 3): loss_d and loss_g, and the modes G's samples cover (of the
    data's modes) when the data has modes; the doctor's events as dotted lines at their steps."""
    fig = Figure(figsize=CURVES_INCHES, dpi=CURVES_DPI)
    losses, modes = fig.subplots(1, 2)
    steps = [r["step"] for r in records]
    for key, colour in (("loss_d", "#1b7837"), ("loss_g", "#762a83")):
        values = [r.get(key, np.nan) for r in records]
        losses.plot(steps, values, color=colour, linewidth=1.2, label=key)
    losses.set_title("losses", fontsize=8)
    if records:
        losses.legend(fontsize=7, loc="best")
    else:
        _say(losses, "no records yet")
    counted = [r for r in records if "modes_captured" in r and "num_modes" in r]
    if counted:
        total = counted[-1]["num_modes"]
        modes.plot([r["step"] for r in counted], [r["modes_captured"] for r in counted], "#b35806")
        modes.axhline(total, color="#888888", linewidth=0.8, linestyle="--")
        modes.set_ylim(-0.5, total + 0.5)
        modes.set_title(f"modes captured (of {total:g})", fontsize=8)
    else:
        modes.set_title("modes captured", fontsize=8)
        _say(modes, "no records yet" if not records else "this data has no modes to count")
    for axes in (losses, modes):
        for step in sorted({e["step"] for e in events}):
            axes.axvline(step, color="#d6604d", linewidth=0.8, linestyle=":")
        axes.tick_params(labelsize=7)
        axes.set_xlabel("step", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.4)
    return figure_pixels(fig, CURVES_DPI)


def _say(axes, words: str) -> None:
    """An empty panel that says why it is empty."""
    axes.set_xticks([])
    axes.set_yticks([])
    axes.text(0.5, 0.5, words, ha="center", va="center", fontsize=8, transform=axes.transAxes)


def describe_events(events: list[dict]) -> str:
    """The doctor's events as Markdown, newest first: step, name, what it saw, its likely
    cause in the settings, and the remedies to try (as flags of `ganforge train`)."""
    if not events:
        return NO_EVENTS
    shown = events[::-1][:EVENTS_SHOWN]
    more = len(events) - len(shown)
    lines = [
        f"**The doctor's events: {len(events)}**" + (f" (the newest {len(shown)})" if more else "")
    ]
    for event in shown:
        evidence = event.get("evidence") or {}
        words = markdown_text(evidence.get("explanation", ""))
        cause = evidence.get("likely_cause")
        if cause:
            words += f" *Likely cause:* {markdown_text(cause)}."
        remedies = ", ".join(markdown_text(r) for r in event.get("remedies") or [])
        if remedies:
            words += f" *Try:* {remedies}"
        lines.append(f"- **step {event['step']:,}: {markdown_text(event['event'])}**. {words}")
    return "\n".join(lines)


def describe_progress(step: int, bound: int, playing: bool, changed: bool = False) -> str:
    """The status line under the buttons."""
    state = (
        "playing"
        if playing
        else ("done: press Reset to train again" if step >= bound else "paused")
    )
    line = f"**Step {step:,}** of {bound:,} · {state}"
    if changed:
        line += " · the settings changed: they apply from Reset"
    return line

"""`ganforge doctor RUN`: a finished (or running) run explained in prose — what the doctor saw
and when, which of the run's own options likely caused it, and what to try, in order.

It reads only the run folder (config.json, events.jsonl, metrics.jsonl): no weights, no
training code, so it works on any run, also one still training."""

from __future__ import annotations

from ganforge.config import TrainConfig
from ganforge.run import Run
from ganforge.training.doctor.causes import Cause, likely_causes

# Per event: what it means, in one line (the evidence adds the numbers).
MEANINGS = {
    "exploding": "weights or gradients grew far beyond their usual size",
    "vanishing": "G's gradient faded while D won almost every call: G stopped learning",
    "d_overpowering": "D told real from fake almost every time: G's signal was weak",
    "g_overpowering": "D could not tell fakes from reals and rated them high: G exploited a weak D",
    "mode_collapse": "G drew from only part of the data (few modes, little variety)",
    "oscillation": "the losses swung ever wider instead of settling",
    "stalled": "the evaluated metric stopped improving",
    "rollback": "a step went non-finite (NaN or infinity) and was undone",
}


def explain_run(run: Run) -> str:
    """The run in prose: header, what happened, likely causes, what to try, where it ended."""
    config, events, records = run.config, run.events(), run.metrics()
    lines = [
        f"{run.path}: {config.model} on {config.data}, step {run.step} of {config.steps}",
        "",
    ]
    kinds = list(dict.fromkeys(e.get("event", "?") for e in events))
    if not kinds:
        lines.append(
            f"The doctor saw no problem in {len(records)} records"
            + ("." if config.doctor else " (it was off: --no-doctor).")
        )
    else:
        lines.append("What happened")
        for kind in kinds:
            lines.append(_happened(kind, [e for e in events if e.get("event") == kind]))
    causes = likely_causes(config, set(kinds))
    if causes:
        lines += ["", "Likely causes in this run's options"]
        lines += [f"- {cause.reason(config)}" for cause in causes]
    fixes = suggested_fixes(config, causes, events)
    if fixes:
        lines += ["", "What to try, first things first", f"  {' '.join(fixes[:1])}"]
        lines += [f"  then: {', '.join(fixes[1:6])}"] if len(fixes) > 1 else []
    if records:
        lines += ["", f"At the end (step {records[-1].get('step')}): {_ending(records[-1])}"]
    return "\n".join(lines)


def _happened(kind: str, events: list[dict]) -> str:
    steps = [e.get("step") for e in events if isinstance(e.get("step"), int)]
    reports = f" ({len(events)} reports)" if len(events) > 1 else ""
    when = ""
    if steps:
        span = min(steps) == max(steps)
        when = f"at step {steps[0]}" if span else f"from step {min(steps)} to {max(steps)}"
    when += reports
    latest = events[-1].get("evidence", {})
    detail = latest.get("explanation", "") if isinstance(latest, dict) else ""
    meaning = MEANINGS.get(kind, "")
    return f"- {kind} {when}: {meaning}." + (f" Latest: {detail}" if detail else "")


def suggested_fixes(config: TrainConfig, causes: list[Cause], events: list[dict]) -> list[str]:
    """The causes' fixes, then the events' remedies in the order they were first suggested."""
    fixes = [cause.flags(config) for cause in causes]
    for event in events:
        remedies = event.get("remedies", [])
        fixes += [r for r in remedies if isinstance(r, str)] if isinstance(remedies, list) else []
    return list(dict.fromkeys(fixes))


ENDING_KEYS = (
    ("d_accuracy", "D right {:.0%} of the time"),
    ("modes_captured", "{:g} modes captured"),
    ("high_quality", "{:.0%} of samples near a mode"),
    ("diversity", "sample diversity {:.3g}"),
    ("diversity_real", "the real data's {:.3g}"),
)


def _ending(record: dict) -> str:
    parts = [
        text.format(record[key])
        for key, text in ENDING_KEYS
        if isinstance(record.get(key), (int, float))
    ]
    return ", ".join(parts) or "no doctor's numbers in the last record"

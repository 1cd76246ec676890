"""`ganforge doctor RUN`: a finished (or running) run explained in prose — what the doctor saw
and when, which of the run's own options likely caused it, and what to try, in order.

It reads only the run folder (config.json, events.jsonl, metrics.jsonl): no weights, no
training code, so it works on any run, also one still training."""

from __future__ import annotations

from ganforge.config import TrainConfig
from ganforge.explanations import explanation
from ganforge.i18n import N_, _
from ganforge.run import Run
from ganforge.training.doctor.causes import Cause, likely_causes

# Per event: what it means, in one line (the evidence adds the numbers).
MEANINGS = {
    "exploding": N_("weights or gradients grew far beyond their usual size"),
    "vanishing": N_("G's gradient faded while D won almost every call: G stopped learning"),
    "d_overpowering": N_("D told real from fake almost every time: G's signal was weak"),
    "g_overpowering": N_(
        "D could not tell fakes from reals and rated them high: G exploited a weak D"
    ),
    "mode_collapse": N_("G drew from only part of the data (few modes, little variety)"),
    "oscillation": N_("the losses swung ever wider instead of settling"),
    "stalled": N_("the evaluated metric stopped improving"),
    "rollback": N_("a step went non-finite (NaN or infinity) and was undone"),
}


def explain_run(run: Run) -> str:
    """The run in prose: header, what happened, likely causes, what to try, where it ended."""
    config, events, records = run.config, run.events(), run.metrics()
    header = _("{path}: {model} on {data}, step {step} of {steps}").format(
        path=run.path, model=config.model, data=config.data, step=run.step, steps=config.steps
    )
    lines = [header, ""]
    kinds = list(dict.fromkeys(e.get("event", "?") for e in events))
    if not kinds:
        seen = _("The doctor saw no problem in {records} records").format(records=len(records))
        lines.append(seen + ("." if config.doctor else _(" (it was off: --no-doctor).")))
    else:
        lines.append(_("What happened"))
        for kind in kinds:
            lines.append(_happened(kind, [e for e in events if e.get("event") == kind]))
    causes = likely_causes(config, set(kinds))
    if causes:
        lines += ["", _("Likely causes in this run's options")]
        lines += [f"- {cause.reason(config)}" for cause in causes]
    fixes = suggested_fixes(config, causes, events)
    if fixes:
        lines += ["", _("What to try, first things first"), f"  {' '.join(fixes[:1])}"]
        then = _("  then: {fixes}").format(fixes=", ".join(fixes[1:6]))
        lines += [then] if len(fixes) > 1 else []
    if records:
        # the last training record: an evaluation's record at the same step has none of these
        last = next((r for r in reversed(records) if _has_ending(r)), records[-1])
        ending = _("At the end (step {step}): {numbers}").format(
            step=last.get("step"), numbers=_ending(last)
        )
        lines += ["", ending]
    return "\n".join(lines)


def _happened(kind: str, events: list[dict]) -> str:
    steps = [e.get("step") for e in events if isinstance(e.get("step"), int)]
    reports = _(" ({count} reports)").format(count=len(events)) if len(events) > 1 else ""
    when = ""
    if steps:
        once = min(steps) == max(steps)
        when = (
            _("at step {step}").format(step=steps[0])
            if once
            else _("from step {first} to {last}").format(first=min(steps), last=max(steps))
        )
    when += reports
    latest = events[-1].get("evidence", {})
    detail = explanation(latest)  # in the reader's language, whatever the training's
    meaning = _(MEANINGS[kind]) if kind in MEANINGS else ""
    latest_text = _(" Latest: {detail}").format(detail=detail) if detail else ""
    return f"- {kind} {when}: {meaning}." + latest_text


def suggested_fixes(config: TrainConfig, causes: list[Cause], events: list[dict]) -> list[str]:
    """The causes' fixes, then the events' remedies in the order they were first suggested."""
    fixes = [cause.flags(config) for cause in causes]
    for event in events:
        remedies = event.get("remedies", [])
        fixes += [r for r in remedies if isinstance(r, str)] if isinstance(remedies, list) else []
    return list(dict.fromkeys(fixes))


ENDING_KEYS = (
    ("d_accuracy", N_("D right {:.0%} of the time")),
    ("modes_captured", (N_("{:g} mode captured"), N_("{:g} modes captured"))),
    ("high_quality", N_("{:.0%} of samples near a mode")),
    ("diversity", N_("sample diversity {:.3g}")),
    ("diversity_real", N_("the real data's {:.3g}")),
)


def _phrase(text: str | tuple[str, str], value: float) -> str:
    """The translated phrase for a number; a (singular, plural) pair agrees with it (one form
    for 1, the other for the rest: the plural rule of both languages)."""
    if isinstance(text, tuple):
        text = text[0] if value == 1 else text[1]
    return _(text)


def _has_ending(record: dict) -> bool:
    return any(isinstance(record.get(key), (int, float)) for key, _text in ENDING_KEYS)


def _ending(record: dict) -> str:
    parts = [
        _phrase(text, record[key]).format(record[key])
        for key, text in ENDING_KEYS
        if isinstance(record.get(key), (int, float))
    ]
    return ", ".join(parts) or _("no doctor's numbers in the last record")

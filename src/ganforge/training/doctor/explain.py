"""`ganforge doctor RUN`: a finished (or running) run explained in prose — what the doctor saw
and when, which of the run's own options likely caused it, and what to try, in order.

It reads only the run folder (config.json, events.jsonl, metrics.jsonl): no weights, no
training code, so it works on any run, also one still training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ganforge.config import TrainConfig
from ganforge.run import Run

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


@dataclass(frozen=True)
class Cause:
    """An option of the run that makes `events` likely, the reason, and its fix (a flag)."""

    events: tuple[str, ...]
    applies: Callable[[TrainConfig], bool]
    reason: Callable[[TrainConfig], str]
    fix: str


CAUSES = (
    Cause(
        ("mode_collapse", "vanishing", "d_overpowering"),
        lambda c: c.g_loss == "saturating",
        lambda c: (
            "--g-loss saturating: G minimises log(1 - D(G(z))), whose gradient vanishes "
            "exactly when D wins — the textbook reason G gives up on part of the data"
        ),
        "--g-loss non-saturating",
    ),
    Cause(
        ("d_overpowering", "vanishing", "mode_collapse"),
        lambda c: c.d_steps > 1,
        lambda c: f"--d-steps {c.d_steps}: D trains {c.d_steps} times per G step and races ahead",
        "--d-steps 1",
    ),
    Cause(
        ("d_overpowering", "vanishing"),
        lambda c: c.lr_d > c.lr_g,
        lambda c: f"--lr-d {c.lr_d:g} is above --lr-g {c.lr_g:g}: D learns faster than G",
        "--lr-d {half_lr_d}",
    ),
    Cause(
        ("d_overpowering", "vanishing"),
        lambda c: c.label_smoothing == 0 and c.loss == "bce",
        lambda c: "--label-smoothing 0: D may grow certain (real label 1) and its logits steep",
        "--label-smoothing 0.1",
    ),
    Cause(
        ("mode_collapse",),
        lambda c: c.pack == 1 and not c.minibatch_std,
        lambda c: (
            "no collapse remedy is on: D judges each sample alone, so it cannot see that "
            "G repeats itself"
        ),
        "--pack 2",
    ),
    Cause(
        ("exploding", "rollback", "oscillation"),
        lambda c: c.loss == "wasserstein" and c.gp == 0 and not c.spectral_norm,
        lambda c: (
            "--loss wasserstein without --gp or --spectral-norm: the critic is not "
            "kept Lipschitz and its scores grow without bound"
        ),
        "--gp 10",
    ),
    Cause(
        ("exploding", "rollback", "oscillation"),
        lambda c: max(c.lr_g, c.lr_d) > 1e-3,
        lambda c: f"learning rates up to {max(c.lr_g, c.lr_d):g}: large steps for Adam on a GAN",
        "--lr-g {half_lr_g}",
    ),
)


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
    causes = [c for c in CAUSES if c.applies(config) and set(c.events) & set(kinds)]
    if causes:
        lines += ["", "Likely causes in this run's options"]
        lines += [f"- {cause.reason(config)}" for cause in causes]
    fixes = _fixes(config, causes, events)
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


def _fixes(config: TrainConfig, causes: list[Cause], events: list[dict]) -> list[str]:
    """The causes' fixes, then the events' remedies in the order they were first suggested."""
    numbers = {"half_lr_d": f"{config.lr_d / 2:g}", "half_lr_g": f"{config.lr_g / 2:g}"}
    fixes = [cause.fix.format(**numbers) for cause in causes]
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

"""What the doctor writes: one JSON line per event in RUN/events.jsonl (step, event, evidence,
remedies), the first of each kind also on stderr; and the events a resumed run keeps."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ganforge.checkpoint_file import whole_number
from ganforge.explanations import explanation
from ganforge.i18n import _
from ganforge.training.logbook import truncate_records


@dataclass
class Event:
    """One line of events.jsonl: what happened when, the numbers behind it, what to try."""

    step: int
    event: str
    evidence: dict  # the numbers that triggered it, and a plain-words "explanation"
    remedies: list[str]  # flags to try, e.g. "--lr-d 0.0001"

    def to_json(self) -> str:
        evidence = {key: _json_value(value) for key, value in self.evidence.items()}
        fields = {"step": self.step, "event": self.event, "evidence": evidence}
        return json.dumps({**fields, "remedies": self.remedies})


def _json_value(value: object) -> object:
    """Numbers rounded for reading; NaN and infinity as text (JSON has no such numbers), also
    inside the dicts an explanation keeps its values in."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


def lr_text(value: float) -> str:
    """A learning rate as a remedy gives it: `--lr-d 0.0001`."""
    return f"{value:.2g}"


class EventLog:
    """RUN/events.jsonl (None: a data-parallel process other than rank 0, which writes
    nothing); each kind of event is also told once on stderr (the file has them all)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._printed: set[str] = set()

    def write(self, event: Event) -> None:
        if self.path is None:
            return
        with self.path.open("a") as handle:
            handle.write(event.to_json() + "\n")
        if event.event not in self._printed:
            self._printed.add(event.event)
            said = explanation(event.evidence)
            cause = event.evidence.get("likely_cause")
            said += _(" Likely cause: {cause}.").format(cause=cause) if cause else ""
            line = _(
                "ganforge doctor: step {step}: {event}: {explanation} Try: {remedies} "
                "(all events: {path})"
            )
            tqdm.write(
                line.format(
                    step=event.step,
                    event=event.event,
                    explanation=said,
                    remedies=", ".join(event.remedies),
                    path=self.path,
                ),
                file=sys.stderr,
            )


def truncate_events(path: Path, step: int, rollbacks: int) -> None:
    """Keep the events of the history a checkpoint at `step` that counted `rollbacks` carries
    on: those up to its step, and its rollbacks, whatever their step. A rollback is logged at
    the step that found the NaN, which can be after a checkpoint written once training went
    back (found at 10, back to 5, interrupted at 8)."""

    def earlier_rollback(event: dict) -> bool:
        evidence = event.get("evidence")
        count = evidence.get("rollbacks") if isinstance(evidence, dict) else None
        return event.get("event") == "rollback" and whole_number(count) and count <= rollbacks

    truncate_records(path, step, keep=earlier_rollback)

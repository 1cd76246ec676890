"""What a run says as it starts: where it goes, and, after its first steps, how long it will
take on this machine (measured, not promised: a README's "2 minutes" is someone else's CPU)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from ganforge.i18n import _

MEASURED_STEPS = 20  # steps timed for the estimate, after the first (warm-up, allocations)


def duration_text(seconds: float) -> str:
    """'45 s', '3.5 min', '2.1 h': the unit a person would say."""
    if seconds < 90:
        return _("{n:.0f} s").format(n=seconds)
    if seconds < 90 * 60:
        return _("{n:.1f} min").format(n=seconds / 60)
    return _("{n:.1f} h").format(n=seconds / 3600)


class StartBanner:
    """Says where the run goes at once, then the expected time left once MEASURED_STEPS steps
    after the first have been timed (or at the end of a run shorter than that, nothing)."""

    def __init__(
        self,
        description: str,
        run_dir: Path,
        first_step: int,
        steps: int,
        enabled: bool,
        clock: Callable[[], float] = time.perf_counter,
        write: Callable[[str], None] | None = None,
    ):
        self.description, self.run_dir = description, run_dir
        self.first_step, self.steps, self.enabled = first_step, steps, enabled
        self.clock = clock
        self.write = write or (lambda line: tqdm.write(line, file=sys.stderr))
        self._timed_from: float | None = None

    def started(self) -> None:
        if not self.enabled:
            return
        line = _(
            "ganforge: {what}, steps {first} to {last} -> {run}  (Ctrl-C stops cleanly: "
            "checkpoint, curves and grid are kept)"
        )
        self.write(
            line.format(
                what=self.description, first=self.first_step + 1, last=self.steps, run=self.run_dir
            )
        )

    def stepped(self, step: int) -> None:
        """Called after each step with the number of steps done."""
        if not self.enabled:
            return
        if step == self.first_step + 1:
            self._timed_from = self.clock()
        elif self._timed_from is not None and step == self.first_step + 1 + MEASURED_STEPS:
            per_step = (self.clock() - self._timed_from) / MEASURED_STEPS
            line = _("ganforge: about {left} to go ({per_step:.3g} s a step over {n} steps)")
            left = duration_text(per_step * (self.steps - step))
            self.write(line.format(left=left, per_step=per_step, n=MEASURED_STEPS))

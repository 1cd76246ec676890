"""Ctrl-C (SIGINT) or SIGTERM (a scheduler's or preempted machine's stop) that stops a run
cleanly: the first signal finishes the current iteration, saves a checkpoint and stops; a
second one stops at once."""

from __future__ import annotations

import signal
import sys
import threading


class GracefulInterrupt:
    """Context manager: while active, SIGINT and SIGTERM set `requested` instead of stopping
    the process (main thread only; elsewhere signals keep their usual meaning)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = signal.Signals(signum).name
        print(f"\n{name}: stopping after this step (send again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc_info) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

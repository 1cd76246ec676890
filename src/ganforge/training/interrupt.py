"""Ctrl-C that stops a run cleanly: the first press finishes the current iteration, saves a
checkpoint and stops; a second press stops at once."""

from __future__ import annotations

import signal
import sys
import threading


class GracefulInterrupt:
    """Context manager: while active, SIGINT sets `requested` instead of raising (main thread
    only; elsewhere Ctrl-C keeps its usual meaning)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step (press again to stop at once)", file=sys.stderr)

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

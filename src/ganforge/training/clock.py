"""Where a training step's time goes, by named section (`ganforge bench`).

The loop marks its sections (`with trainer.clock.section("data"): ...`); a plain run's clock
is NO_CLOCK, whose sections cost one attribute lookup. A section nested in another counts
for itself only (the outer one gets the rest). On a GPU the clock synchronises at each
boundary, so that kernels are charged to the section that launched them: a bench's total is
then a little slower than a plain run's.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator


class _NoClock:
    _nothing = contextlib.nullcontext()

    def section(self, name: str) -> contextlib.AbstractContextManager:
        return self._nothing


NO_CLOCK = _NoClock()


class SectionClock:
    """Seconds per section name, exclusive of nested sections. `sync` waits for the device
    (torch.cuda.synchronize on a GPU) before each reading."""

    def __init__(self, sync: Callable[[], None] = lambda: None):
        self.sync = sync
        self.seconds: dict[str, float] = defaultdict(float)
        self._nested: list[float] = []

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            self.sync()
            elapsed = time.perf_counter() - start
            inner = self._nested.pop()
            self.seconds[name] += elapsed - inner
            if self._nested:
                self._nested[-1] += elapsed

    def reset(self) -> None:
        self.seconds.clear()

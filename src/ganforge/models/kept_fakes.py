"""--reuse-fakes: G's phase learns from the fakes D's phase drew for the same real batch, as
the PyTorch DCGAN tutorial's loop does, sparing one forward pass of G per iteration.

D's phase draws them with G's graph recorded (the loop freezes every network but the one a
phase trains: G's parameters require grads for that one pass), shows them to D detached, and
keeps them; G's phase takes them back by the real batch they were drawn for, and draws new
ones for a batch it does not find. At most one update's batches (--accumulate) are kept, and
they are dropped before the next iteration: nothing of them reaches a checkpoint, so a resumed
run stays exact. It changes the run (G's noise is D's, G's batchnorm statistics move once per
iteration), which is why it is off by default and in the config's hash. GANFamily, pix2pix and
cyclegan use it; a family that keeps no `kept_fakes` refuses the option (training/setup.py)."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ganforge.config import TrainConfig


class KeptFakes:
    """The fakes of D's last step, each with what drew it, keyed by its real batch."""

    def __init__(self, batches: int):
        self._kept: deque[tuple[torch.Tensor, tuple]] = deque(maxlen=batches)

    def keep(self, real: torch.Tensor, *drawn: torch.Tensor | None) -> None:
        self._kept.append((real, drawn))

    def take(self, real: torch.Tensor) -> tuple | None:
        """What was kept for this very batch (the same tensor), forgotten once taken."""
        for index, (kept_real, drawn) in enumerate(self._kept):
            if kept_real is real:
                del self._kept[index]
                return drawn
        return None

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)


def kept_fakes(config: TrainConfig) -> KeptFakes | None:
    """A family's store for --reuse-fakes (None when off): the batches of one update."""
    return KeptFakes(config.accumulate) if config.reuse_fakes else None


def fakes_for_d(
    kept: KeptFakes | None, generator: nn.Module, real: torch.Tensor, draw: Callable[[], tuple]
) -> tuple:
    """What `draw()` returns (the fakes, and what drew them) for D's phase, without G's graph.
    With --reuse-fakes (`kept`) drawn with the graph of `generator` and kept for G's phase on
    the same `real` batch; D gets them detached."""
    if kept is None:
        with torch.no_grad():
            return draw()
    with recording(generator):
        drawn = draw()
    kept.keep(real, *drawn)
    return tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in drawn)


@contextlib.contextmanager
def recording(network: nn.Module) -> Iterator[None]:
    """Let `network` record its graph for one pass inside a phase that froze it."""
    parameters = list(network.parameters())
    flags = [parameter.requires_grad for parameter in parameters]
    network.requires_grad_(True)
    try:
        yield
    finally:
        for parameter, flag in zip(parameters, flags):
            parameter.requires_grad_(flag)

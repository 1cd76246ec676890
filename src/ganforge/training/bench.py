"""`ganforge bench`: the real training step of a config, timed on this machine.

    ganforge bench --model dcgan --data mnist-mini --batch-size 64 --steps 40

Builds the Trainer that `ganforge train` would (any training option applies) in a temporary
run folder that is deleted afterwards, trains --warmup steps untimed (first steps pay for
allocation, cuDNN autotuning, compilation), then --steps timed ones, and says how many
images per second one training iteration (every phase: D, then G) gets through and where the
time goes: data, each phase's step (forward, backward, optimiser), diagnostics (gradient
norms, the NaN watch, records and the doctor's signals, checks and snapshots), and the rest
(EMA, logging, checkpoints and sample grids when the intervals fall inside the timed steps).
On a GPU, throughput is timed once without section marks, then the sections on as many steps
again, synchronising the device at each mark.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.training.clock import NO_CLOCK, SectionClock
from ganforge.training.distributed import launched
from ganforge.training.loop import Trainer, new_config

DEFAULT_STEPS = 40
DEFAULT_WARMUP = 5


@dataclass
class BenchResult:
    setting: str  # model, data, shape, batch, device, threads, precision
    steps: int
    images_per_iteration: int  # a batch, or --accumulate of them
    seconds: float  # wall time of the timed steps
    sections: dict[str, float]  # seconds per section over as many steps; "other": the rest

    @property
    def images_per_second(self) -> float:
        return self.steps * self.images_per_iteration / self.seconds

    def report(self) -> str:
        per_step = 1000 * self.seconds / self.steps
        lines = [
            self.setting,
            f"{self.images_per_second:.0f} img/s ({per_step:.1f} ms per iteration, "
            f"{self.steps} iterations after the warm-up)",
        ]
        total = sum(self.sections.values()) or 1.0
        width = max(len(name) for name in self.sections)
        for name, seconds in self.sections.items():
            lines.append(
                f"  {name:<{width}}  {1000 * seconds / self.steps:8.2f} ms  "
                f"{100 * seconds / total:5.1f}%"
            )
        return "\n".join(lines)


def bench(options: dict[str, Any], warmup: int = DEFAULT_WARMUP) -> BenchResult:
    """Time the training iteration of the run `options` describe (as `train` takes them;
    `steps` is the number of timed iterations, default 40)."""
    if warmup < 0:
        raise GanforgeError(f"--warmup: must be 0 or more, got {warmup}")
    if options.get("ddp") or launched():
        raise GanforgeError("--ddp: bench times one process; give it no --ddp or torchrun")
    if options.get("resume") or options.get("out"):
        raise GanforgeError("--out: bench trains in a temporary folder and keeps nothing")
    steps = options.get("steps") or DEFAULT_STEPS
    # one step more than is run: the run never reaches its end (the final checkpoint, grids)
    config = new_config(None, {**options, "steps": warmup + 2 * steps + 1, "progress": False})
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as folder:
        trainer = Trainer(config, Path(folder) / "run", resuming=False)
        try:
            return _timed(trainer, warmup, steps)
        finally:
            trainer.close()


def _timed(trainer: Trainer, warmup: int, steps: int) -> BenchResult:
    on_gpu = trainer.device.type == "cuda"
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    for _ in range(warmup):
        trainer.step()
    clock = SectionClock(sync)
    trainer.clock = NO_CLOCK if on_gpu else clock
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    sync()
    seconds = time.perf_counter() - start
    sectioned = seconds
    if on_gpu:  # marks synchronise the GPU: time the sections on as many steps again
        trainer.clock = clock
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        sectioned = time.perf_counter() - start
    trainer.clock = NO_CLOCK
    sections = _named_sections(trainer, clock.seconds, sectioned)
    # an iteration's update (G's, and each of D's) is of --accumulate batches
    images = trainer.config.batch_size * trainer.config.accumulate
    return BenchResult(_setting(trainer), steps, images, seconds, sections)


def _named_sections(trainer: Trainer, seconds: dict[str, float], total: float) -> dict:
    """data, '<phase> step' for each phase, diagnostics, other (the rest of `total`)."""
    names = ["data", *(phase.name for phase in trainer.family.phases), "diagnostics"]
    found = {
        (f"{name} step" if name not in ("data", "diagnostics") else name): seconds.get(name, 0.0)
        for name in names
    }
    found["other"] = max(0.0, total - sum(seconds.values()))
    return found


def _setting(trainer: Trainer) -> str:
    config, device = trainer.config, trainer.device
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    extras = [f"precision {config.precision}"]
    if config.compile:
        extras.append("compiled")
    if trainer.channels_last:
        extras.append("channels-last")
    if config.reuse_fakes:
        extras.append("reusing D's fakes")
    if not config.doctor:
        extras.append("no doctor")
    batch = f"batch {config.batch_size}"
    if config.accumulate > 1:
        batch += f" x {config.accumulate} accumulated"
    return (
        f"{config.model} on {config.data} ({config.resolution} px, {config.channels} ch), "
        f"{batch}, {where}, {', '.join(extras)}"
    )

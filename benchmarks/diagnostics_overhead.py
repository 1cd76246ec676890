"""What the doctor costs: milliseconds per training step with diagnostics on and off.

The default DCGAN on mnist-mini, batch 64, --log-every 50. One trainer is warmed up, then
trains 50-step blocks (each holds one record) with its doctor attached and detached in turn
(on, off, off, on, ...), 200 steps each way: the doctor never changes the training, so both
ways time the same networks, memory and data, and the noise of a shared machine falls on both
alike (two separate trainers differ by a few percent on their own). With the doctor a step
adds the NaN watch of each phase's loss, and each record adds weight norms, the diversity
probe, the finiteness check, the detectors and the rollback snapshot. Checkpoints and sample
grids fall outside the timed window. Process CPU time is reported next to wall time: with one
thread it is the steadier of the two on a busy machine.

    python benchmarks/diagnostics_overhead.py [--steps 200] [--warmup 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ganforge.config import TrainConfig
from ganforge.training.loop import Trainer

BLOCK = 50  # steps per timed block: one record each


def make_trainer(steps: int, folder: Path) -> Trainer:
    config = TrainConfig(
        model="dcgan",
        data="mnist-mini",
        batch_size=64,
        steps=steps,
        log_every=BLOCK,
        checkpoint_every=10**6,
        sample_every=10**6,
        progress=False,
    )
    trainer = Trainer(config, folder / "run", resuming=False)
    return trainer


def record_costs(trainer: Trainer, repeats: int = 10) -> str:
    """Milliseconds of each piece of the doctor's work at one record."""
    doctor, networks = trainer.state.doctor, trainer.family.networks
    pieces = {
        "signals": lambda: [
            float(v) for v in doctor.signals(networks, trainer.sampling_network()).values()
        ],
        "check": lambda: doctor.check(networks),
        "snapshot": lambda: doctor.snapshot(*trainer.state.contents()),
    }
    costs = []
    for name, piece in pieces.items():
        start = time.perf_counter()
        for _ in range(repeats):
            piece()
        costs.append(f"{name} {1000 * (time.perf_counter() - start) / repeats:.1f} ms")
    return ", ".join(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps (a multiple of 50)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    blocks = max(1, args.steps // BLOCK)
    wall = {True: 0.0, False: 0.0}
    cpu = {True: 0.0, False: 0.0}
    with tempfile.TemporaryDirectory() as folder:
        trainer = make_trainer(args.warmup + 2 * blocks * BLOCK, Path(folder))
        doctor = trainer.state.doctor
        for _ in range(args.warmup):
            trainer.step()
        for block in range(blocks):
            for on in (True, False) if block % 2 == 0 else (False, True):
                trainer.state.doctor = doctor if on else None
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(BLOCK):
                    trainer.step()
                wall[on] += time.perf_counter() - start_wall
                cpu[on] += time.process_time() - start_cpu
        trainer.state.doctor = doctor
        costs = record_costs(trainer)
    steps = blocks * BLOCK
    print(f"DCGAN mnist-mini, batch 64, {steps} steps each way, {args.threads} thread(s):")
    for clock, seconds in (("wall", wall), ("cpu ", cpu)):
        on, off = 1000 * seconds[True] / steps, 1000 * seconds[False] / steps
        print(
            f"  {clock}: diagnostics off {off:.2f} ms/step, on {on:.2f} ms/step, "
            f"overhead {100 * (on - off) / off:+.1f}%"
        )
    print(f"  the doctor at each record: {costs}")


if __name__ == "__main__":
    main()

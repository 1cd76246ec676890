"""What R1 + R2 cost per training step, with and without lazy regularisation (--reg-every),
side by side in one process.

    python benchmarks/regularisation_cost.py                    # dcgan, 28 px, batch 64
    python benchmarks/regularisation_cost.py --blocks 6 --threads 2

Each variant is a real Trainer (RpGAN, `--loss relativistic`, as R3GAN trains) on mnist-mini;
after a warm-up, blocks of 16 iterations (one --reg-every 16 period) run in turn, variant after
variant, so that the noise of a shared machine falls on all alike. Printed: the median seconds
per iteration over blocks with quartiles (process CPU time beside wall time), and each
variant's median over the plain loss's. R3GAN's users report R1 + R2 as 6-7x slower than no
penalty without lazy regularisation: the double backward through D on reals and fakes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from ganforge.config import TrainConfig
from ganforge.training.loop import Trainer

BLOCK = 16  # iterations per timed block: one period of --reg-every 16
VARIANTS = {
    "relativistic": {},
    "relativistic --r1 1 --r2 1": {"r1": 1.0, "r2": 1.0},
    "relativistic --r1 1 --r2 1 --reg-every 16": {"r1": 1.0, "r2": 1.0, "reg_every": BLOCK},
}


def trainer(options: dict, folder: Path, args) -> Trainer:
    config = TrainConfig(
        model=args.model,
        data="mnist-mini",
        loss="relativistic",
        batch_size=args.batch_size,
        steps=10**9,
        checkpoint_every=10**9,
        sample_every=10**9,
        progress=False,
        device="cpu",
        out=str(folder),
        **options,
    )
    config.validate()
    return Trainer(config, folder, resuming=False)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return q1, median, q3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks per variant")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        trainers = {
            name: trainer(o, Path(root) / str(i), args)
            for i, (name, o) in enumerate(VARIANTS.items())
        }
        for t in trainers.values():  # warm-up: one whole period each
            for _ in range(BLOCK):
                t.step()
        wall = {name: [] for name in trainers}
        cpu = {name: [] for name in trainers}
        for _ in range(args.blocks):
            for name, t in trainers.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(BLOCK):
                    t.step()
                wall[name].append((time.perf_counter() - start) / BLOCK)
                cpu[name].append((time.process_time() - start_cpu) / BLOCK)
        for t in trainers.values():
            t.close()
    base = statistics.median(wall["relativistic"])
    base_cpu = statistics.median(cpu["relativistic"])
    print(
        f"{args.model}, 28 px, batch {args.batch_size}, {args.threads} thread(s), "
        f"{args.blocks} blocks of {BLOCK} iterations"
    )
    print(
        f"{'variant':45s} {'s/iteration (q1, median, q3)':32s} {'cpu s':>7s} "
        f"{'x plain':>8s} {'cpu x':>6s}"
    )
    for name in trainers:
        q1, median, q3 = quartiles(wall[name])
        print(
            f"{name:45s} {q1:.4f}  {median:.4f}  {q3:.4f}         "
            f"{statistics.median(cpu[name]):7.4f} {median / base:8.2f} "
            f"{statistics.median(cpu[name]) / base_cpu:6.2f}"
        )


if __name__ == "__main__":
    main()

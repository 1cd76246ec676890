"""How close a training iteration comes to what this machine can compute: the roofline view.

    python benchmarks/roofline.py          # dcgan 28 px, dcgan 64 px, pix2pix 32 px, r3gan 28 px
    python benchmarks/roofline.py --configs dcgan-28 --threads 2 --steps 30

For each config, in one process, on the same device and threads:
- the arithmetic of one iteration (every phase, forward and backward, R1/R2's double backward,
  the optimiser steps): FLOPs by torch.utils.flop_counter's formulas over every op of a real
  `Trainer.step()` (what `ganforge train` runs; a multiply-add counts as 2 FLOPs; elementwise
  work — activations, norms, Adam's arithmetic — is not counted, which is part of why a step
  falls short of the peak);
- the time of an iteration and where it goes, from `ganforge bench` (data, each phase, the
  doctor's diagnostics, the rest);
- the machine's peak measured here and now: the best GFLOP/s of a large fp32 GEMM and of a large
  3x3 convolution, timed the same way.

It prints achieved GFLOP/s, the share of each peak, and the time a step would take at the conv
peak against the time it takes. A step far below the peak is dominated by work the FLOP count
leaves out (memory-bound elementwise kernels, small convolutions that cannot fill the cores,
Python and dispatch overhead), which the sections locate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ganforge.training.bench import bench
from ganforge.training.loop import Trainer, new_config

CONFIGS = {
    "dcgan-28": {"model": "dcgan", "data": "mnist-mini"},
    "dcgan-64": {"model": "dcgan", "data": "mnist-mini", "resolution": 64},
    "pix2pix-32": {"model": "pix2pix", "data": "mnist-mini-edges", "resolution": 32},
    "r3gan-28": {"model": "r3gan", "data": "mnist-mini"},
}


def _best_rate(work, flops: float, device: torch.device, seconds: float = 1.0) -> float:
    """The best GFLOP/s of `work()` (doing `flops`) over repeats filling about `seconds`."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):
        work()
    sync()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        work()
        sync()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return flops / best / 1e9


def gemm_peak(device: torch.device, n: int = 2048) -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    return _best_rate(lambda: a @ b, 2.0 * n**3, device)


def conv_peak(device: torch.device, batch: int = 64, channels: int = 128, side: int = 32) -> float:
    x = torch.randn(batch, channels, side, side, device=device)
    w = torch.randn(channels, channels, 3, 3, device=device)
    if device.type == "cuda" or torch.backends.mkldnn.is_available():
        x = x.to(memory_format=torch.channels_last)
        w = w.to(memory_format=torch.channels_last)
    flops = 2.0 * batch * channels * side * side * channels * 9
    return _best_rate(lambda: F.conv2d(x, w, padding=1), flops, device)


class FlopCount(TorchDispatchMode):
    """FLOPs of every op run inside it, by torch's own formulas (torch.utils.flop_counter's
    registry: matmuls, convolutions and their backward, attention). Unlike FlopCounterMode it
    tracks no modules, which is what lets it follow an `autograd.grad` inside a step (R1/R2's
    double backward): FlopCounterMode's module tracker refuses one."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def iteration_flops(options: dict, warmup: int = 2) -> float:
    """FLOPs of one training iteration of `options`, counted after `warmup` iterations."""
    config = new_config(None, {**options, "steps": warmup + 10, "progress": False})
    with tempfile.TemporaryDirectory(prefix="ganforge-roofline-") as folder:
        trainer = Trainer(config, Path(folder) / "run", resuming=False)
        try:
            for _ in range(warmup):
                trainer.step()
            with FlopCount() as counter:
                trainer.step()
            return float(counter.total)
        finally:
            trainer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help=", ".join(CONFIGS))
    parser.add_argument("--steps", type=int, default=30, help="timed iterations per config")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: as is)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(unknown)} (known: {', '.join(CONFIGS)})")

    gemm, conv = gemm_peak(device), conv_peak(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{where}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"peak: fp32 GEMM 2048^3 {gemm:.1f} GFLOP/s; 3x3 conv 64x128x32x32 {conv:.1f} GFLOP/s")
    print()
    print(
        "| config | GFLOP / iteration | ms / iteration | GFLOP/s | % of GEMM peak "
        "| % of conv peak | ms at conv peak | where the time goes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        options = {**CONFIGS[name], "batch_size": args.batch_size, "device": args.device}
        flops = iteration_flops(options)
        timed = bench({**options, "steps": args.steps})
        seconds = timed.seconds / timed.steps
        rate = flops / seconds / 1e9
        total = sum(timed.sections.values()) or 1.0
        parts = ", ".join(
            f"{part} {100 * s / total:.0f}%"
            for part, s in timed.sections.items()
            if s / total >= 0.01
        )
        print(
            f"| {name} | {flops / 1e9:.2f} | {1000 * seconds:.1f} | {rate:.1f} "
            f"| {100 * rate / gemm:.1f}% | {100 * rate / conv:.1f}% "
            f"| {1000 * flops / (conv * 1e9):.1f} | {parts} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""The GPU suite: everything worth measuring the first time a CUDA machine is lent, in one go.

    benchmarks/gpu_suite.sh              # on a CUDA machine: runs every part, prints one table
    benchmarks/gpu_suite.sh --dry-run    # anywhere: lists the parts and their commands
    benchmarks/gpu_suite.sh --only resume,roofline

Installs nothing (torch and ganforge are already there). Every part is a command run in its own
process with a time limit, so one failure is a row in the table, not the end of the suite:

- throughput of `ganforge bench` (dcgan, batch 64) at 28 px/1 ch and 64 px/3 ch, in fp32, bf16,
  fp16, fp32 with --compile, with --reuse-fakes and with --accumulate 4;
- the fast paths off one at a time, side by side with them on: channels-last, fused Adam;
- the roofline (benchmarks/roofline.py) on the GPU;
- a 2-process NCCL DDP run with --sync-bn against one process with the same global batch
  (needs 2 GPUs: skipped, and named, on one);
- exact resume on CUDA: 40 steps straight against 20 + a resume to 40, checkpoints compared
  tensor by tensor, bit for bit.

Without CUDA every CUDA part is skipped and named; `--dry-run` only lists. The table goes to
stdout and, as JSON, to --out (default gpu-suite.json). Budget: about 5 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
BENCH_STEPS = "50"
PART_SECONDS = 240  # no part may take longer (compilation included)


@dataclass
class Part:
    name: str
    command: list[str]
    needs_gpus: int = 1  # CUDA devices the part needs (0: runs anywhere)
    parse: str = "bench"  # how its output becomes a number: bench, roofline, same
    env: dict = field(default_factory=dict)


def bench_command(resolution: int, channels: int, *flags: str) -> list[str]:
    return [
        PYTHON, "-m", "ganforge", "bench", "--model", "dcgan", "--data", "mnist-mini",
        "--resolution", str(resolution), "--channels", str(channels), "--batch-size", "64",
        "--steps", BENCH_STEPS, "--device", "cuda", *flags,
    ]  # fmt: skip


def variant_command(variant: str) -> list[str]:
    """`ganforge bench` at 64 px/3 ch with one fast path turned off (this script, --variant)."""
    return [PYTHON, str(Path(__file__)), "--variant", variant]


def parts(scratch: Path) -> list[Part]:
    found = []
    for resolution, channels in ((28, 1), (64, 3)):
        size = f"{resolution} px/{channels} ch"
        for label, flags in (
            ("fp32", []),
            ("bf16", ["--precision", "bf16"]),
            ("fp16", ["--precision", "fp16"]),
            ("fp32 --compile", ["--compile"]),
            ("fp32 --reuse-fakes", ["--reuse-fakes"]),
            ("fp32 --accumulate 4", ["--accumulate", "4"]),
        ):
            found.append(Part(f"bench {size} {label}", bench_command(resolution, channels, *flags)))
    found += [
        Part("bench 64 px/3 ch, channels-last off", variant_command("no-channels-last")),
        Part("bench 64 px/3 ch, fused Adam off", variant_command("no-fused-adam")),
        Part(
            "roofline",
            [PYTHON, str(HERE / "roofline.py"), "--device", "cuda", "--steps", "30"],
            parse="roofline",
        ),
    ]
    train = [PYTHON, "-m", "ganforge", "train", "--model", "dcgan", "--data", "mnist-mini"]
    train += ["--steps", "40", "--batch-size", "64", "--device", "cuda", "--no-progress"]
    train += ["--checkpoint-every", "20"]
    ddp, single = scratch / "ddp", scratch / "single"
    found.append(
        Part(
            "DDP NCCL 2 processes --sync-bn = 1 process",
            _chain(
                [*train, "--ddp", "--nproc-per-node", "2", "--sync-bn", "--out", str(ddp)],
                [*train, "--out", str(single)],
                [PYTHON, str(Path(__file__)), "--compare", str(ddp), str(single), "--atol", "1e-4"],
            ),
            needs_gpus=2,
            parse="same",
        )
    )
    straight, halves = scratch / "straight", scratch / "halves"
    found.append(
        Part(
            "exact resume on CUDA (20 + 20 = 40 steps)",
            _chain(
                [*train, "--out", str(straight)],
                [*[w if w != "40" else "20" for w in train], "--out", str(halves)],
                [
                    PYTHON,
                    "-m",
                    "ganforge",
                    "train",
                    "--resume",
                    str(halves),
                    "--steps",
                    "40",
                    "--no-progress",
                ],
                [PYTHON, str(Path(__file__)), "--compare", str(straight), str(halves)],
            ),
            parse="same",
        )
    )
    return found


def _chain(*commands: list[str]) -> list[str]:
    return ["bash", "-c", " && ".join(shlex.join(c) for c in commands)]


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def read_number(part: Part, output: str) -> str:
    if part.parse == "bench":
        found = re.search(r"([\d.]+) img/s \(([\d.]+) ms per iteration", output)
        return f"{found[1]} img/s, {found[2]} ms" if found else "?"
    if part.parse == "same":
        found = re.search(r"^(same|DIFFERENT).*$", output, re.MULTILINE)
        return found[0] if found else "?"
    rows = [line for line in output.splitlines() if line.startswith("| ") and "---" not in line]
    return f"{len(rows) - 1} configs (table above)" if rows else "?"


def run_suite(args: argparse.Namespace) -> int:
    gpus = 0 if args.dry_run else gpu_count()
    with tempfile.TemporaryDirectory(prefix="ganforge-gpu-suite-") as scratch:
        chosen = parts(Path(scratch))
        if args.only:
            wanted = [w.strip() for w in args.only.split(",")]
            chosen = [p for p in chosen if any(w in p.name for w in wanted)]
        print(f"ganforge GPU suite: {len(chosen)} parts; CUDA devices here: {gpus}", flush=True)
        rows = []
        for part in chosen:
            if args.dry_run:
                print(f"- {part.name} (needs {part.needs_gpus} GPU(s)): {shlex.join(part.command)}")
                continue
            if gpus < part.needs_gpus:
                why = f"skipped: needs {part.needs_gpus} CUDA device(s), {gpus} here"
                print(f"- {part.name}: {why}", flush=True)
                rows.append({"part": part.name, "result": why, "seconds": 0.0})
                continue
            started = time.perf_counter()
            try:
                done = subprocess.run(
                    part.command,
                    capture_output=True,
                    text=True,
                    timeout=PART_SECONDS,
                    env={**os.environ, **part.env},
                )
                output = done.stdout + done.stderr
                result = (
                    read_number(part, output)
                    if done.returncode == 0
                    else (f"FAILED (exit {done.returncode}): {output.strip().splitlines()[-1:]}")
                )
                if part.parse == "roofline":
                    print(done.stdout)
            except subprocess.TimeoutExpired:
                result = f"FAILED: over {PART_SECONDS} s"
            seconds = time.perf_counter() - started
            print(f"- {part.name}: {result} ({seconds:.0f} s)", flush=True)
            rows.append({"part": part.name, "result": result, "seconds": round(seconds, 1)})
        if args.dry_run:
            return 0
    print("\n| part | result | s |\n|---|---|---|")
    for row in rows:
        print(f"| {row['part']} | {row['result']} | {row['seconds']:.0f} |")
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r["result"].startswith("FAILED") for r in rows) else 0


def run_variant(variant: str) -> None:
    """`ganforge bench` at 64 px/3 ch with one fast path off (patched in this process)."""
    from ganforge.training import fast_paths
    from ganforge.training.bench import bench

    if variant == "no-channels-last":
        fast_paths.wants_channels_last = lambda networks, device: False
    elif variant == "no-fused-adam":
        fast_paths.optimizer_options = lambda optimizer, device: {"foreach": True}
    else:
        raise SystemExit(f"--variant: unknown '{variant}'")
    options = {"model": "dcgan", "data": "mnist-mini", "resolution": 64, "channels": 3}
    options |= {"batch_size": 64, "steps": int(BENCH_STEPS), "device": "cuda"}
    print(bench(options).report())


def compare_runs(a: Path, b: Path, atol: float) -> None:
    """Prints `same` when the newest checkpoints of runs `a` and `b` hold the same tensors (bit
    for bit, or within `atol`), else `DIFFERENT` with the first tensor that differs."""
    import torch

    from ganforge.checkpoint_file import load_checkpoint
    from ganforge.run import Run

    first, _ = load_checkpoint(Run(a).checkpoints[-1][1])
    second, _ = load_checkpoint(Run(b).checkpoints[-1][1])
    if first.keys() != second.keys():
        print(f"DIFFERENT: tensor names differ ({len(first)} vs {len(second)})")
        return
    for name in sorted(first):
        x, y = first[name], second[name]
        exact = torch.equal(x, y)
        if not exact and (atol == 0 or not torch.allclose(x.double(), y.double(), atol=atol)):
            print(f"DIFFERENT: {name} (largest difference {float((x - y).abs().max()):.3g})")
            return
    print(f"same: {len(first)} tensors" + (" bit for bit" if atol == 0 else f" within {atol:g}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list the parts, run nothing")
    parser.add_argument("--only", help="comma-separated parts of names (e.g. resume,roofline)")
    parser.add_argument("--out", default="gpu-suite.json", help="the table as JSON")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--compare", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--atol", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        run_variant(args.variant)
        return 0
    if args.compare:
        compare_runs(*args.compare, args.atol)
        return 0
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())

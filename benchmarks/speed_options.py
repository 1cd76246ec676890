"""What the speed options buy on this machine: each variant of a config against the config as
it is, side by side in one process.

    python benchmarks/speed_options.py                      # dcgan 28 and 64 px, pix2pix 32 px
    python benchmarks/speed_options.py --configs dcgan-28 --variants compile --blocks 6
    python benchmarks/speed_options.py --memory             # + peak memory, one process each

The configs are the roofline's (benchmarks/roofline.py). The variants:
- `compile`: --compile (torch.compile of the networks; its first steps pay for compilation);
- `reuse-fakes`: --reuse-fakes (G's phase learns from D's fakes: one pass of G fewer; another
  run, so off by default);
- `batch-256`: --batch-size 256, one update of a 4x larger batch;
- `accumulate-4`: --batch-size 64 --accumulate 4, the same effective batch in the memory of 64.

Every variant is a real `Trainer` (what `ganforge train` builds: the doctor on, its records);
each runs --warmup untimed iterations (their time is reported: compilation, allocation), then
blocks of --block iterations run in turn, the order rotated each round so that the slow
minutes of a shared machine fall on all alike. Throughput is images per second (a batch-256 or
accumulate-4 iteration moves 256 images through each phase); the figure of a variant is the
median over rounds of its images/s over the baseline's in the same round, with its quartiles.
CPU time is given next to wall time. torch.compile's cache starts empty (a fresh
TORCHINDUCTOR_CACHE_DIR unless one is set), so the compile variant's warm-up is a first
compilation. With --memory each variant is also built alone in a fresh
process and trained for --memory-steps iterations: its peak resident set (and on CUDA the peak
allocated device memory), as benchmarks/train_throughput.py measures it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# a first compilation, as in a user's first run, not one served from an earlier run's cache
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="ganforge-inductor-"))

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ganforge.training.loop import Trainer, new_config  # noqa: E402
from roofline import CONFIGS  # noqa: E402
from train_throughput import reset_peak_rss, status_kib, synchronize  # noqa: E402

BASELINE = "baseline"
VARIANTS = {
    BASELINE: {},
    "compile": {"compile": True},
    "reuse-fakes": {"reuse_fakes": True},
    "batch-256": {"batch_size": 256},
    "accumulate-4": {"accumulate": 4},
}
NEVER = 10**9  # checkpoints and grids outside the timed window


def build(config: str, variant: str, device: str, folder: Path) -> Trainer:
    options = {
        **CONFIGS[config],
        "batch_size": 64,
        **VARIANTS[variant],
        "steps": NEVER,
        "checkpoint_every": NEVER,
        "sample_every": NEVER,
        "device": device,
        "progress": False,
    }
    return Trainer(new_config(None, options), folder / f"{config}-{variant}", resuming=False)


def images_per_iteration(trainer: Trainer) -> int:
    return trainer.config.batch_size * trainer.config.accumulate


def compare(config: str, variants: list[str], args: argparse.Namespace) -> dict:
    """Each variant's warm-up time, images/s, and its median ratio to the baseline's."""
    names = [BASELINE, *(v for v in variants if v != BASELINE)]
    with tempfile.TemporaryDirectory(prefix="ganforge-speed-options-") as folder:
        trainers = {name: build(config, name, args.device, Path(folder)) for name in names}
        device = trainers[BASELINE].device
        warmup = {}
        for name, trainer in trainers.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(args.warmup):
                trainer.step()
            synchronize(device)
            warmup[name] = time.perf_counter() - start
        wall = {name: [] for name in names}
        cpu = {name: [] for name in names}
        for block in range(args.blocks):
            shift = block % len(names)
            for name in names[shift:] + names[:shift]:
                synchronize(device)
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.block):
                    trainers[name].step()
                synchronize(device)
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)
        images = {name: args.block * images_per_iteration(t) for name, t in trainers.items()}
        setting = {
            "channels_last": trainers[BASELINE].channels_last,
            "resolution": trainers[BASELINE].config.resolution,
        }
        for trainer in trainers.values():
            trainer.close()
    rates = {name: [images[name] / s for s in seconds] for name, seconds in wall.items()}
    cpu_rates = {name: [images[name] / s for s in seconds] for name, seconds in cpu.items()}
    return {
        "config": config,
        "device": str(device),
        "threads": torch.get_num_threads(),
        **setting,
        "variants": {
            name: {
                "img_per_s": statistics.median(rates[name]),
                "warmup_s": warmup[name],
                "ratio": _ratios(rates[name], rates[BASELINE]),
                "ratio_cpu": statistics.median(
                    v / b for v, b in zip(cpu_rates[name], cpu_rates[BASELINE])
                ),
            }
            for name in names
        },
    }


def _ratios(variant: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """Lower quartile, median, upper quartile of the per-round ratio variant/baseline."""
    ratios = sorted(v / b for v, b in zip(variant, baseline))
    if len(ratios) == 1:
        return ratios[0], ratios[0], ratios[0]
    low, _, high = statistics.quantiles(ratios, n=4)
    return low, statistics.median(ratios), high


def peak_memory(config: str, variant: str, args: argparse.Namespace) -> dict:
    """One variant alone in this process: its peak resident set while training (MiB), and on
    CUDA its peak allocated device memory."""
    with tempfile.TemporaryDirectory(prefix="ganforge-speed-memory-") as folder:
        trainer = build(config, variant, args.device, Path(folder))
        for _ in range(args.warmup):  # compilation's own memory is not training's
            trainer.step()
        gc.collect()
        if not reset_peak_rss():
            raise SystemExit("cannot reset the peak resident set (/proc/self/clear_refs)")
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)
        for _ in range(args.memory_steps):
            trainer.step()
        synchronize(trainer.device)
        found = {"peak_rss_mib": status_kib("VmHWM") / 1024}
        if trainer.device.type == "cuda":
            found["cuda_peak_mib"] = torch.cuda.max_memory_allocated(trainer.device) / 2**20
        trainer.close()
    return found


def memory_in_subprocess(config: str, variant: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        f"{config}:{variant}",
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        "--warmup",
        str(args.warmup),
        "--memory-steps",
        str(args.memory_steps),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(result: dict, memory: dict[str, dict]) -> str:
    lines = [
        f"{result['config']} ({result['resolution']} px), {result['device']}, "
        f"{result['threads']} thread(s), channels-last {result['channels_last']}",
        f"  {'variant':<14}{'img/s':>8}  {'x baseline (quartiles)':<24}{'CPU time':>9}"
        f"{'warm-up':>10}" + ("  peak memory" if memory else ""),
    ]
    for name, found in result["variants"].items():
        low, median, high = found["ratio"]
        ratio = f"{median:.3f} ({low:.3f}-{high:.3f})"
        mem = ""
        if name in memory:
            mem = f"  {memory[name]['peak_rss_mib']:7.0f} MiB"
            if "cuda_peak_mib" in memory[name]:
                mem += f" (CUDA {memory[name]['cuda_peak_mib']:.0f} MiB)"
        lines.append(
            f"  {name:<14}{found['img_per_s']:8.0f}  {ratio:<24}{found['ratio_cpu']:9.3f}"
            f"{found['warmup_s']:9.1f}s{mem}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", default="dcgan-28,dcgan-64,pix2pix-32", help=", ".join(CONFIGS)
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help=", ".join(VARIANTS))
    parser.add_argument("--block", type=int, default=4, help="iterations per timed block")
    parser.add_argument("--blocks", type=int, default=8, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first iterations")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory")
    parser.add_argument("--memory-steps", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        config, variant = args.memory_child.split(":")
        print(json.dumps(peak_memory(config, variant, args)))
        return
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for given, known, flag in ((configs, CONFIGS, "--configs"), (variants, VARIANTS, "--variants")):
        unknown = [name for name in given if name not in known]
        if unknown:
            raise SystemExit(f"{flag}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results = []
    for config in configs:
        result = compare(config, variants, args)
        memory = {}
        if args.memory:
            memory = {name: memory_in_subprocess(config, name, args) for name in result["variants"]}
        result["memory"] = memory
        results.append(result)
        print(report(result, memory), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

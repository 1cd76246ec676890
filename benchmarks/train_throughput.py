"""Training throughput and peak memory: ganforge's loop against the plain PyTorch-tutorial loop
(plain_dcgan_loop.py) on the same DCGAN networks, side by side in one process.

    python benchmarks/train_throughput.py                      # 28 px/1 ch and 64 px/3 ch
    python benchmarks/train_throughput.py --sizes 28x1 --blocks 8 --threads 2
    python benchmarks/train_throughput.py --memory             # + peak memory, one process each

Throughput: images per second of full iterations (one D and one G update, batch 64). ganforge
runs its real training step (`Trainer.step`: its defaults, the doctor on, a record
every 50 steps with gradient norms, weight norms, the diversity probe, the NaN check and the
rollback snapshot) with checkpoints and sample grids moved out of the timed window; the plain
loop runs the tutorial's iteration (`PlainDCGAN.step`) on batches drawn from the same images,
held in memory as float tensors. After a warm-up, blocks of --block iterations alternate
(ganforge, plain, plain, ganforge, ...) so that the noise of a shared machine falls on both
alike. The figure is the median over block pairs of plain time / ganforge time (> 1: ganforge
is faster), with its quartiles; process CPU time is reported next to wall time (with one
thread it is the steadier of the two on a busy machine). The plain loop reads D(x), D(G(z))
and both losses with .item() every iteration, as the tutorial does (free on a CPU, a host
sync each on a GPU); ganforge reads its statistics once per record.

Peak memory (--memory): each loop is built alone in a fresh process (the same settings), then
runs --memory-steps iterations; on CPU the figure is the peak resident set while training
(VmHWM, reset when training starts: data, networks, optimiser state, activations, torch and
the interpreter; for ganforge also the EMA copy and the doctor's rollback snapshot; the plain
loop holds its data as float, as the tutorial's DataLoader hands it over, ganforge as uint8);
on CUDA also torch.cuda.max_memory_allocated.
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
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ganforge.config import TrainConfig  # noqa: E402
from ganforge.data import to_model_range  # noqa: E402
from ganforge.training.loop import Trainer  # noqa: E402
from plain_dcgan_loop import PlainDCGAN  # noqa: E402

BATCH = 64
NEVER = 10**9  # checkpoint and grid intervals outside the timed window


def ganforge_trainer(resolution: int, channels: int, device: str, folder: Path) -> Trainer:
    config = TrainConfig(
        model="dcgan",
        data="mnist-mini",
        resolution=resolution,
        channels=channels,
        batch_size=BATCH,
        steps=NEVER,
        checkpoint_every=NEVER,
        sample_every=NEVER,
        device=device,
        progress=False,
    )
    trainer = Trainer(config, folder / f"run-{resolution}x{channels}", resuming=False)
    return trainer


def plain_loop(images: torch.Tensor, width: int = 64) -> Callable[[], None]:
    """The tutorial's iteration on random batches of `images` (uint8 NCHW; held as float in
    [-1, 1], as the tutorial's dataset is), on their device."""
    images = to_model_range(images)
    plain = PlainDCGAN(width, images.shape[-1], images.shape[1], images.device)

    def step() -> None:
        picks = torch.randint(len(images), (BATCH,), device=images.device)
        plain.step(images[picks])

    return step


def ganforge_loop(trainer: Trainer) -> Callable[[], None]:
    return trainer.step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def compare(resolution: int, channels: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ganforge-throughput-") as folder:
        trainer = ganforge_trainer(resolution, channels, args.device, Path(folder))
        device = trainer.device
        loops = {
            "ganforge": ganforge_loop(trainer),
            "plain": plain_loop(trainer.real_batches.images, trainer.config.width),
        }
        for loop in loops.values():
            for _ in range(args.warmup):
                loop()
        wall = {name: [] for name in loops}
        cpu = {name: [] for name in loops}
        for block in range(args.blocks):
            order = list(loops) if block % 2 == 0 else list(reversed(loops))
            for name in order:
                synchronize(device)
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.block):
                    loops[name]()
                synchronize(device)
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)
        trainer.real_batches.close()
    images = args.blocks * args.block * BATCH
    return {
        "size": f"{resolution} px/{channels} ch",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "iterations": args.blocks * args.block,
        "img_per_s": {name: images / sum(seconds) for name, seconds in wall.items()},
        "ratio_wall": median_ratio(wall),
        "ratio_cpu": median_ratio(cpu),
        "ratio_spread": spread(wall),
        "channels_last": trainer.channels_last,
    }


def median_ratio(seconds: dict[str, list[float]]) -> float:
    """The median over blocks of plain time / ganforge time, each pair of blocks run back to
    back: robust to the slow minutes of a shared machine."""
    return statistics.median(p / g for p, g in zip(seconds["plain"], seconds["ganforge"]))


def spread(seconds: dict[str, list[float]]) -> tuple[float, float]:
    """The lower and upper quartile of the per-block ratios."""
    ratios = sorted(p / g for p, g in zip(seconds["plain"], seconds["ganforge"]))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return quartiles[0], quartiles[-1]


# ---- peak memory, one loop per process ----------------------------------------------------------


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Start VmHWM afresh at the current resident set (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_memory(which: str, resolution: int, channels: int, args: argparse.Namespace) -> dict:
    """Build one loop alone in this process, then run it: the peak resident set while it
    trains (data, networks, optimiser state, activations, and for ganforge the EMA copy and
    the doctor's snapshot), and on CUDA the peak of allocated device memory."""
    from ganforge.data import open_dataset
    from ganforge.run import torch_device

    device = torch_device(args.device)
    with tempfile.TemporaryDirectory(prefix="ganforge-memory-") as folder:
        if which == "plain":
            dataset = open_dataset("mnist-mini", resolution=resolution, channels=channels)
            loop = plain_loop(dataset.images.to(device))
            del dataset  # the plain loop keeps its float copy
        else:
            loop = ganforge_loop(ganforge_trainer(resolution, channels, args.device, Path(folder)))
        gc.collect()
        if not reset_peak_rss():
            raise SystemExit("cannot reset the peak resident set (/proc/self/clear_refs)")
        before = status_kib("VmRSS")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.memory_steps):
            loop()
        synchronize(device)
        found = {
            "loop": which,
            "before_mib": before / 1024,
            "peak_rss_mib": status_kib("VmHWM") / 1024,
        }
    if device.type == "cuda":
        found["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return found


def memory_in_subprocess(which: str, resolution: int, channels: int, args) -> dict:
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        which,
        "--sizes",
        f"{resolution}x{channels}",
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        "--memory-steps",
        str(args.memory_steps),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="28x1,64x3", help="RESOLUTIONxCHANNELS, comma-separated")
    parser.add_argument("--block", type=int, default=10, help="iterations per timed block")
    parser.add_argument("--blocks", type=int, default=10, help="timed blocks per loop")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory")
    parser.add_argument("--memory-steps", type=int, default=20)
    parser.add_argument("--memory-child", choices=("ganforge", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [tuple(int(x) for x in size.split("x")) for size in args.sizes.split(",")]
    if args.memory_child:
        print(json.dumps(measure_memory(args.memory_child, *sizes[0], args)))
        return
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for resolution, channels in sizes:
        result = compare(resolution, channels, args)
        speeds = result["img_per_s"]
        print(
            f"dcgan {result['size']}, batch {BATCH}, {result['device']}, "
            f"{result['threads']} thread(s), {result['iterations']} iterations each "
            f"(channels-last: {result['channels_last']}):\n"
            f"  ganforge {speeds['ganforge']:8.1f} img/s   plain loop {speeds['plain']:8.1f} img/s"
            f"\n  ratio ganforge/plain {result['ratio_wall']:.3f} (wall; quartiles "
            f"{result['ratio_spread'][0]:.3f}-{result['ratio_spread'][1]:.3f}), "
            f"{result['ratio_cpu']:.3f} (CPU time)",
            flush=True,
        )
        if args.memory:
            for which in ("ganforge", "plain"):
                found = memory_in_subprocess(which, resolution, channels, args)
                cuda = (
                    f", CUDA peak {found['cuda_peak_mib']:.0f} MiB"
                    if "cuda_peak_mib" in found
                    else ""
                )
                print(
                    f"  peak memory {which:<8}: {found['peak_rss_mib']:7.1f} MiB resident while "
                    f"training ({found['before_mib']:.0f} MiB before the first step{cuda})",
                    flush=True,
                )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Training throughput and peak memory: ganforge's loop against the plain PyTorch-tutorial loop
(plain_dcgan_loop.py) on the same DCGAN networks, side by side in one process.

    python benchmarks/train_throughput.py                      # 28 px/1 ch and 64 px/3 ch
    python benchmarks/train_throughput.py --sizes 28x1 --blocks 8 --threads 2
    python benchmarks/train_throughput.py --memory             # + peak memory, one process each

Throughput: images per second of full iterations (one D and one G update, batch 64). ganforge
runs its real training step (`Trainer._train_one_step`: its defaults, the doctor on, a record
every 50 steps with gradient norms, weight norms, the diversity probe, the NaN check and the
rollback snapshot) with checkpoints and sample grids moved out of the timed window; the plain
loop runs the tutorial's iteration (`PlainDCGAN.step`) on batches drawn from the same images,
held in memory as float tensors. After a warm-up, blocks of --block iterations alternate
(ganforge, plain, plain, ganforge, ...) so that the noise of a shared machine falls on both
alike; the ratio ganforge/plain is the figure. Process CPU time is reported next to wall time:
with one thread it is the steadier of the two on a busy machine.

Peak memory (--memory): each loop runs alone in a fresh process (the same settings,
--memory-steps iterations); on CPU the figure is the peak resident set (ru_maxrss) minus the
resident set just before the networks were built (torch, the data and the interpreter are the
same for both); on CUDA, torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

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
    trainer.doctor.snapshot(*trainer._checkpoint_contents())  # as fit() does
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
    bar = tqdm(disable=True)
    return lambda: trainer._train_one_step(bar)


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
        wall = dict.fromkeys(loops, 0.0)
        cpu = dict.fromkeys(loops, 0.0)
        for block in range(args.blocks):
            order = list(loops) if block % 2 == 0 else list(reversed(loops))
            for name in order:
                synchronize(device)
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.block):
                    loops[name]()
                synchronize(device)
                wall[name] += time.perf_counter() - start_wall
                cpu[name] += time.process_time() - start_cpu
        trainer.real_batches.close()
    images = args.blocks * args.block * BATCH
    return {
        "size": f"{resolution} px/{channels} ch",
        "device": str(device),
        "threads": torch.get_num_threads(),
        "iterations": args.blocks * args.block,
        "img_per_s": {name: images / seconds for name, seconds in wall.items()},
        "ratio_wall": wall["plain"] / wall["ganforge"],
        "ratio_cpu": cpu["plain"] / cpu["ganforge"],
        "channels_last": trainer.channels_last,
    }


# ---- peak memory, one loop per process ----------------------------------------------------------


def resident_kib() -> int:
    """This process's resident set now (VmRSS, KiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure_memory(which: str, resolution: int, channels: int, args: argparse.Namespace) -> dict:
    """Run one loop alone in this process; its peak memory over what came before."""
    from ganforge.data import open_dataset
    from ganforge.run import torch_device

    dataset = open_dataset("mnist-mini", resolution=resolution, channels=channels)
    device = torch_device(args.device)
    before = resident_kib()  # torch, the decoded data and the interpreter: alike for both
    with tempfile.TemporaryDirectory(prefix="ganforge-memory-") as folder:
        if which == "plain":
            loop = plain_loop(dataset.images.to(device))
        else:
            loop = ganforge_loop(ganforge_trainer(resolution, channels, args.device, Path(folder)))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(args.memory_steps):
            loop()
        synchronize(device)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found = {
        "loop": which,
        "peak_rss_mib": peak_kib / 1024,
        "over_start_mib": (peak_kib - before) / 1024,
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
    parser.add_argument("--blocks", type=int, default=6, help="timed blocks per loop")
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
            f"   ratio {result['ratio_wall']:.3f} (wall), {result['ratio_cpu']:.3f} (CPU time)",
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
                    f"  peak memory {which:<8}: {found['over_start_mib']:7.1f} MiB over the start "
                    f"(peak RSS {found['peak_rss_mib']:.0f} MiB{cuda})",
                    flush=True,
                )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

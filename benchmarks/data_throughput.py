"""Decode and iteration throughput (images/s) of each dataset reader on this machine.

    python benchmarks/data_throughput.py [--images 2000] [--workers 2]

Files are written in the official formats into a temporary folder (CIFAR binary archives, IDX
files, PNG/JPEG folders and pix2pix-style pairs, all made from real mnist-mini digits); the real
Fashion-MNIST IDX files are read too when Debian's dataset-fashion-mnist package is installed.
Decode = files on disk -> one uint8 tensor; iteration = training batches (float, on the CPU)
from RealBatches, in memory or streamed by DataLoader workers. One torch thread, as the tests.
"""

from __future__ import annotations

import argparse
import io
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data import RealBatches, load_dataset, load_paired_folder, open_dataset
from ganforge.data.cifar import CIFAR10, read_cifar_binary
from ganforge.data.idx import write_idx
from ganforge.data.mnist import idx_pair_dataset
from ganforge.training.batches import EpochBatches

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
BATCH = 64
WARMUP_BATCHES = 10


def timed(label: str, count: int, work: Callable[[], object]) -> None:
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    print(f"{label:<58} {count:>7} images {seconds:7.2f} s {count / seconds:>10,.0f} images/s")


def digits_rgb(n: int, size: int) -> list[Image.Image]:
    """`n` real digits from mnist-mini, enlarged to size x size and tinted, as RGB pictures."""
    digits = load_dataset("mnist-mini").images[:n, 0].numpy()
    pictures = []
    for i, digit in enumerate(digits):
        gray = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
        tint = np.array([1.0, 0.6 + 0.4 * (i % 2), 0.5 + 0.5 * (i % 3 == 0)])
        rgb = (np.asarray(gray, dtype=np.float32)[..., None] * tint).astype(np.uint8)
        pictures.append(Image.fromarray(rgb))
    return pictures


def write_cifar_archive(path: Path, per_batch: int) -> int:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for i in range(1, 6):
            records = rng.integers(0, 256, size=(per_batch, 3073), dtype=np.uint8)
            records[:, 0] %= 10
            data = records.tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/data_batch_{i}.bin")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return 5 * per_batch


def iterate(label: str | None, dataset, batches: int, **options) -> None:
    """Time `batches` training batches (after a few untimed ones that start the workers)."""
    real = RealBatches(dataset, EpochBatches(len(dataset), BATCH, seed=0), **options)
    for _ in range(WARMUP_BATCHES):
        real.next()
    try:
        if label is None:
            [real.next() for _ in range(batches)]
        else:
            timed(label, batches * BATCH, lambda: [real.next() for _ in range(batches)])
    finally:
        real.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images per folder benchmark")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers when streaming")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.images
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("decode (files on disk -> one uint8 tensor)")
        if (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file():
            timed(
                "IDX, real Fashion-MNIST train (gzip, 28x28)",
                60000,
                lambda: idx_pair_dataset(
                    DEBIAN_FASHION / "train-images-idx3-ubyte.gz",
                    DEBIAN_FASHION / "train-labels-idx1-ubyte.gz",
                    "fashion-mnist",
                    [str(i) for i in range(10)],
                ),
            )
        digits = load_dataset("mnist-mini")
        write_idx(root / "images-idx3-ubyte", digits.images[:, 0].numpy())
        write_idx(root / "labels-idx1-ubyte", digits.labels.numpy().astype(np.uint8))
        timed(
            "IDX, mnist-mini digits (uncompressed, 28x28)",
            len(digits),
            lambda: idx_pair_dataset(
                root / "images-idx3-ubyte", root / "labels-idx1-ubyte", "mnist", list("0123456789")
            ),
        )
        cifar = root / "cifar-10-binary.tar.gz"
        count = write_cifar_archive(cifar, per_batch=4000)
        timed(
            "CIFAR-10 binary .tar.gz (32x32 RGB)", count, lambda: read_cifar_binary(CIFAR10, cifar)
        )

        pictures = digits_rgb(n, 256)
        for fmt, suffix in (("PNG", "png"), ("JPEG", "jpg")):
            for i, picture in enumerate(pictures):
                folder = root / f"folder-{suffix}" / str(i % 10)
                folder.mkdir(parents=True, exist_ok=True)
                picture.save(folder / f"{i:05d}.{suffix}", format=fmt, quality=90)
        for suffix in ("png", "jpg"):
            timed(
                f"image folder, {suffix.upper()} 256x256 RGB -> 64x64",
                n,
                lambda s=suffix: load_dataset(str(root / f"folder-{s}"), resolution=64),
            )
        pairs = n // 4
        (root / "pairs").mkdir()
        for i in range(pairs):  # A: the grey digit, B: the tinted one
            side_by_side = Image.new("RGB", (512, 256))
            side_by_side.paste(pictures[i].convert("L").convert("RGB"), (0, 0))
            side_by_side.paste(pictures[i], (256, 0))
            side_by_side.save(root / "pairs" / f"{i:05d}.jpg", quality=90)
        timed(
            "paired folder, A|B JPEG 512x256 -> two 64x64",
            pairs,
            lambda: load_paired_folder(root / "pairs", resolution=64),
        )

        print(f"\niteration (training batches of {BATCH}, float [-1, 1] on the CPU)")
        tinted = load_dataset(str(root / "folder-jpg"), resolution=64)
        steps = max(1, 2 * (n // BATCH) - WARMUP_BATCHES)  # about two epochs
        # The first few hundred batches of a process run 3-4x slower (its memory is still being
        # mapped in): they are left out, as a training run soon leaves them behind.
        iterate(None, tinted, 600)
        iterate("in memory, 64x64 RGB", tinted, 200)
        iterate("in memory, 64x64 RGB, --hflip", tinted, 200, hflip=True)
        for workers in sorted({0, args.workers}):
            streamed = open_dataset(str(root / "folder-jpg"), resolution=64, cache="stream")
            iterate(
                f"streamed JPEG folder, {workers} worker(s)",
                streamed,
                steps,
                cache="stream",
                workers=workers,
            )


if __name__ == "__main__":
    main()

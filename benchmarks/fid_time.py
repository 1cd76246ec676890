"""How long FID takes: 10k vs 10k samples with each feature extractor, and the matrix square
root against scipy's sqrtm at Inception's 2048 dimensions.

    python benchmarks/fid_time.py                       # everything (Inception part: see below)
    python benchmarks/fid_time.py --n 10000 --inception-n 256 --threads 2

Timed, per extractor: featurising N real + N fake uint8 images (batch 200), then the Fréchet
distance of the two 2-D feature arrays. Real images are mnist-mini's 5,000 digits (repeated
to N) and the fake ones are those digits with noise; only the count matters for the time.
Inception-v3 at 299x299 costs ~6 GFLOPs per image: on a CPU, the script times --inception-n
images and extrapolates to 2N, saying so; on a GPU give --inception-n 20000 for the full run.

The square-root part compares, on covariances of 2048-d features (random, full-rank):
- ganforge: Tr((S1 S2)^(1/2)) as the eigenvalues of S1^(1/2) S2 S1^(1/2) (two eigh calls);
- scipy:    np.trace(scipy.linalg.sqrtm(S1 @ S2)).real, as pytorch-fid computes it;
and prints both times and the relative difference of the results.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import ganforge.metrics as gm
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics.frechet import trace_sqrt_product


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def image_sets(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    digits = load_dataset("mnist-mini").images
    real = digits.repeat((n + len(digits) - 1) // len(digits), 1, 1, 1)[:n]
    noise = torch.randint(0, 60, real.shape, generator=torch.Generator().manual_seed(0))
    fake = (real.int() + noise).clamp(0, 255).to(torch.uint8)
    return real, fake


def time_extractor(name: str, extractor, real, fake, n_timed: int, device: str) -> None:
    n = len(real)
    subset = min(n_timed, n)
    (feats_real, t_real) = timed(gm.extract_features, extractor, real[:subset], device=device)
    (feats_fake, t_fake) = timed(gm.extract_features, extractor, fake[:subset], device=device)
    per_image = (t_real + t_fake) / (2 * subset)
    fd, t_fd = timed(gm.frechet_distance, feats_real.features, feats_fake.features)
    note = "" if subset == n else f" (timed on {subset}+{subset}, extrapolated to {n}+{n})"
    print(
        f"{name:<10} features {extractor.feature_dim:>4}-d: {2 * n * per_image:8.1f} s for "
        f"{n}+{n} images ({1 / per_image:7.1f} img/s){note}; Fréchet distance {t_fd:.2f} s; "
        f"total {2 * n * per_image + t_fd:8.1f} s"
    )


def random_covariance(dim: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((dim * 2, dim)) / np.sqrt(dim)
    return a.T @ a


def compare_sqrtm(dim: int, repeats: int) -> None:
    import scipy.linalg

    rng = np.random.default_rng(0)
    s1, s2 = random_covariance(dim, rng), random_covariance(dim, rng)
    ours, theirs = [], []
    for _ in range(repeats):
        value_ours, t = timed(trace_sqrt_product, s1, s2)
        ours.append(t)
        root, t = timed(scipy.linalg.sqrtm, s1 @ s2)
        theirs.append(t)
        value_scipy = float(np.trace(root).real)
    rel = abs(value_ours - value_scipy) / abs(value_scipy)
    print(
        f"Tr sqrt(S1 S2) at {dim}-d (best of {repeats}): ganforge eigh {min(ours):.2f} s, "
        f"scipy sqrtm {min(theirs):.2f} s -> {min(theirs) / min(ours):.1f}x faster; "
        f"relative difference {rel:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="images per side (default 10000)")
    parser.add_argument("--inception-n", type=int, default=128, help="Inception images timed")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dim", type=int, default=2048, help="covariance size for sqrtm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inception-weights", help="weights file (else the usual lookup)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    real, fake = image_sets(args.n)
    time_extractor("mnist", gm.load_extractor("mnist"), real, fake, args.n, args.device)
    try:
        inception = gm.load_extractor(
            "inception", device=args.device, inception_weights=args.inception_weights
        )
    except GanforgeError as exc:
        print(f"inception  skipped: {exc}")
    else:
        time_extractor("inception", inception, real, fake, args.inception_n, args.device)
    compare_sqrtm(args.dim, args.repeats)


if __name__ == "__main__":
    main()

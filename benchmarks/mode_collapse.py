"""Mode collapse on the papers' toy data, measured as PacGAN's Table 1 measures it.

    python benchmarks/mode_collapse.py                         # the table of the README
    python benchmarks/mode_collapse.py --seeds 2 --steps 500   # a quick end-to-end check

For each dataset (ring8: 8 Gaussians on the unit circle, std 0.01; grid25: 25 Gaussians at
{-4,-2,0,2,4}^2, std 0.05) and each variant (--variants: the plain GAN at a constant learning
rate, the plain GAN, --pack 2/3/4, --minibatch-std, --unroll 5; all but the first with a cosine
decay of the rate), trains `ganforge train --model mlp` with --seeds seeds, then scores 2,500
samples of the final generator (`ganforge eval`, metric group `mixture`: modes captured, share
of high-quality samples within 3 std of their mode, reverse KL of the modes' histogram to
uniform) and prints the mean and standard error over the seeds, next to PacGAN's published
numbers.

The networks are PacGAN's own (G: 4 x 400 ReLU units with batch norm; D: 3 x 200 maxout units
of 5 pieces, `--d-maxout 5`; z 2-D; batch 100), trained for a CPU budget: --steps steps with a
cosine decay of the rate, where PacGAN trains 400,000 steps at 1e-4 on a GPU (see NETWORK).
The runs go --jobs at a time, one thread each; each writes its run folder under --out, so a
table can be re-scored without retraining (--score-only). The budget is stated in the output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent

# PacGAN Table 1 (Lin et al. 2018): (modes, high-quality %, reverse KL) of its rows
PUBLISHED = {
    ("ring8", "plain"): (6.3, 98.2, 0.45),
    ("ring8", "pack2"): (7.9, 95.6, 0.07),
    ("ring8", "pack3"): (7.9, 96.3, 0.07),
    ("ring8", "pack4"): (7.8, 98.0, 0.12),
    ("grid25", "plain"): (17.3, 94.8, 0.70),
    ("grid25", "pack2"): (23.8, 91.3, 0.13),
    ("grid25", "pack3"): (24.6, 94.2, 0.06),
    ("grid25", "pack4"): (24.8, 93.6, 0.04),
}
VARIANTS = {
    "constant-lr": ("--lr-decay", "none"),  # the plain GAN at a constant rate
    "plain": (),
    "pack2": ("--pack", "2"),
    "pack3": ("--pack", "3"),
    "pack4": ("--pack", "4"),
    "minibatch-std": ("--minibatch-std",),
    "unroll5": ("--unroll", "5"),
}
# PacGAN's networks (its reference code): G 4 x 400 ReLU units with batch norm, D 3 x 200 maxout
# units of 5 pieces, z 2-D, Adam with beta1 0.8, batch 100; a cosine decay of the rate instead of
# PacGAN's 400,000 steps at 1e-4, and no EMA (it blurs points)
NETWORK = (
    ("--z-dim", "2"),
    ("--g-layers", "400,400,400,400"),
    ("--g-activation", "relu"),
    ("--g-norm", "batch"),
    ("--d-layers", "200,200,200"),
    ("--d-maxout", "5"),
    ("--beta1", "0.8"),
    ("--label-smoothing", "0"),
    ("--ema-decay", "0"),
    ("--lr-decay", "cosine"),  # samples settle on the modes instead of circling them
)
RATE = {"ring8": "1e-3", "grid25": "1e-3"}  # Adam's rate of G and D, per data


def train_and_score(job: tuple[str, str, int, int, int, str, bool]) -> dict:
    """One run (a process of its own, one thread): train unless done, then score."""
    data, variant, seed, steps, batch, out, score_only = job
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from ganforge.cli import main
    from ganforge.evaluate import evaluate_run

    run = Path(out) / f"{data}-{variant}-seed{seed}"
    started = time.perf_counter()
    if not score_only and not (run / "checkpoints").is_dir():
        options = VARIANTS[variant]
        pack = int(options[1]) if options[:1] == ("--pack",) else 1
        batch_of_pack = batch - batch % pack  # D judges whole packs
        argv = ["train", "--model", "mlp", "--data", data, "--seed", str(seed)]
        argv += [part for option in NETWORK for part in option]
        argv += ["--lr-g", RATE[data], "--lr-d", RATE[data]]
        argv += ["--steps", str(steps), "--batch-size", str(batch_of_pack), "--out", str(run)]
        argv += ["--checkpoint-every", str(steps), "--sample-every", str(steps)]
        argv += ["--log-every", str(max(steps // 20, 1)), "--no-progress", *VARIANTS[variant]]
        main(argv)
    seconds = time.perf_counter() - started
    result = evaluate_run(run, n=2500, seed=seed, write=True)["metrics"]
    return {"data": data, "variant": variant, "seed": seed, "train_s": seconds, **result}


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def table(results: list[dict], datasets: list[str], variants: list[str]) -> str:
    lines = [
        "| data | variant | modes | high quality % | reverse KL | PacGAN (modes, HQ %, KL) |",
        "|---|---|---|---|---|---|",
    ]
    for data in datasets:
        for variant in variants:
            rows = [r for r in results if r["data"] == data and r["variant"] == variant]
            if not rows:
                continue
            modes = mean_and_error([r["modes_captured"] for r in rows])
            quality = mean_and_error([100 * r["high_quality"] for r in rows])
            kl = mean_and_error([r["reverse_kl"] for r in rows])
            published = PUBLISHED.get((data, variant))
            paper = "—" if published is None else "{}, {}, {}".format(*published)
            lines.append(
                f"| {data} | {variant} | {modes[0]:.1f} ± {modes[1]:.1f} "
                f"/ {rows[0]['num_modes']} | {quality[0]:.1f} ± {quality[1]:.1f} | "
                f"{kl[0]:.3f} ± {kl[1]:.3f} | {paper} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="ring8,grid25")
    parser.add_argument("--variants", default="constant-lr,plain,pack2,pack4,minibatch-std")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    parser.add_argument("--out", default=str(HERE / "out" / "mode_collapse"))
    parser.add_argument("--score-only", action="store_true", help="score the runs in --out")
    args = parser.parse_args()
    datasets, variants = args.data.split(","), args.variants.split(",")
    jobs = [
        (data, variant, seed, args.steps, args.batch_size, args.out, args.score_only)
        for data in datasets
        for variant in variants
        for seed in range(args.seeds)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_and_score, jobs))
    wall = time.perf_counter() - started
    train_s = sum(r["train_s"] for r in results)
    print(table(results, datasets, variants))
    print(
        f"\n{len(results)} runs of {args.steps} steps (batch {args.batch_size}), "
        f"{args.seeds} seeds; {wall / 60:.1f} min wall on {args.jobs} processes, "
        f"{train_s / len(results):.0f} s of training per run (one thread)"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Mode collapse on stacked MNIST, measured as PacGAN's Table 2 measures it.

    python benchmarks/stacked_mnist.py                          # the table of the README
    python benchmarks/stacked_mnist.py --seeds 1 --steps 50 --n 2000 --variants plain
                                                                # a quick end-to-end check

For each variant (the plain DCGAN, --pack 2, --minibatch-std and, when asked for, --unroll 5),
trains `ganforge train --model dcgan --data stacked-mnist` (three mnist-mini digits as the R, G
and B channels of one 28x28 image: 1,000 modes) with --seeds seeds, then scores --n samples of
the final generator (`evaluate_run`, metric group `stacked`: each channel read by the packaged
digit classifier; modes found out of 1,000, KL of the mode histogram to uniform, in nats) and
prints the mean and standard error over the seeds, next to the numbers of PacGAN's Table 2.

The published numbers below are PacGAN's Table 2 (Lin et al. 2018) as recalled, not re-read:
its DCGAN row comes from the setup of VEEGAN and Unrolled GAN, where D is made weaker than G
(Unrolled GAN's stacked-MNIST experiment gives D 1/4 or 1/2 of the usual filters) so that the
plain GAN collapses. --d-width W gives dcgan's D a base width of its own (--width 32 --d-width
8 is a quarter of G's filters, as in the papers); without it D is as wide as G, the weaker D of
the papers is not reproduced, and the plain rows need not collapse as theirs do.

The network is DCGAN at a CPU budget (see NETWORK): --width channels, batch 64, bce without
label smoothing, no EMA, Adam at dcgan's rates until 0.1 (G 4e-4, D 2e-4, betas 0.5, 0.999: what
the README's table measured). The runs go --jobs at a time, one thread
each; each writes its run folder under --out, so a table can be re-scored without retraining
(--score-only). The budget is stated in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from mode_collapse import mean_and_error  # noqa: E402  (the same statistics as the toy rows)

# PacGAN Table 2 (Lin et al. 2018), as recalled: (modes out of 1,000, KL to uniform)
PUBLISHED = {
    "plain": (99.0, 3.40),  # DCGAN, in VEEGAN's weaker-D setup
    "pack2": (1000.0, 0.06),  # PacDCGAN2
    "unroll5": (48.7, 4.32),  # Unrolled GAN, as VEEGAN ran it
}
VARIANTS = {
    "plain": (),
    "pack2": ("--pack", "2"),
    "minibatch-std": ("--minibatch-std",),
    "unroll5": ("--unroll", "5"),  # about 5 extra D steps per G step: opt in with --variants
}
DEFAULT_VARIANTS = ("plain", "pack2", "minibatch-std")
NETWORK = (
    ("--label-smoothing", "0"),
    ("--ema-decay", "0"),
    ("--lr-g", "4e-4"),
    ("--lr-d", "2e-4"),
    ("--beta1", "0.5"),
    ("--beta2", "0.999"),
)


def train_and_score(job: tuple[str, int, int, int, int, int, str, bool]) -> dict:
    """One run (a process of its own, one thread): train unless done, then score."""
    variant, seed, steps, batch, (width, d_width), n, out, score_only = job
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from ganforge.cli import main
    from ganforge.evaluate import evaluate_run

    run = Path(out) / f"stacked-mnist-{variant}-seed{seed}"
    started = time.perf_counter()
    if not score_only and not (run / "checkpoints").is_dir():
        argv = ["train", "--model", "dcgan", "--data", "stacked-mnist", "--seed", str(seed)]
        argv += ["--width", str(width), *(part for option in NETWORK for part in option)]
        argv += ["--d-width", str(d_width)] if d_width else []
        argv += ["--steps", str(steps), "--batch-size", str(batch), "--out", str(run)]
        argv += ["--checkpoint-every", str(steps), "--sample-every", str(steps)]
        argv += ["--log-every", str(max(steps // 20, 1)), "--no-progress", *VARIANTS[variant]]
        main(argv)
    train_s = time.perf_counter() - started
    result = evaluate_run(run, n=n, seed=seed, write=True)["metrics"]
    eval_s = time.perf_counter() - started - train_s
    return {"variant": variant, "seed": seed, "train_s": train_s, "eval_s": eval_s, **result}


def table(results: list[dict], variants: list[str]) -> str:
    lines = [
        "| variant | modes found | KL to uniform | seeds | PacGAN Table 2 (modes, KL) |",
        "|---|---|---|---|---|",
    ]
    for variant in variants:
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue
        modes = mean_and_error([r["modes_found"] for r in rows])
        kl = mean_and_error([r["mode_kl"] for r in rows])
        published = PUBLISHED.get(variant)
        paper = "—" if published is None else "{:.1f}, {:.2f}".format(*published)
        lines.append(
            f"| {variant} | {modes[0]:.1f} ± {modes[1]:.1f} / {rows[0]['num_modes']} | "
            f"{kl[0]:.2f} ± {kl[1]:.2f} | {len(rows)} | {paper} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32, help="dcgan --width of G and D")
    parser.add_argument("--d-width", type=int, default=0, help="D's base width (0: --width)")
    parser.add_argument("--n", type=int, default=26000, help="samples scored per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each")
    parser.add_argument("--out", default=str(HERE / "out" / "stacked_mnist"))
    parser.add_argument("--score-only", action="store_true", help="score the runs in --out")
    args = parser.parse_args()
    variants = args.variants.split(",")
    jobs = [
        (variant, seed, args.steps, args.batch_size, (args.width, args.d_width), args.n, args.out)
        + (args.score_only,)
        for variant in variants
        for seed in range(args.seeds)
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_and_score, jobs))
    wall = time.perf_counter() - started
    train_s = sum(r["train_s"] for r in results) / len(results)
    eval_s = sum(r["eval_s"] for r in results) / len(results)
    print(table(results, variants))
    print(
        f"\n{len(results)} runs of {args.steps} steps (dcgan --width {args.width} --d-width "
        f"{args.d_width or args.width}, batch "
        f"{args.batch_size}), {args.seeds} seeds, {args.n} samples scored per run; "
        f"{wall / 60:.1f} min wall on {args.jobs} processes; per run (one thread) "
        f"{train_s:.0f} s of training and {eval_s:.0f} s of scoring"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

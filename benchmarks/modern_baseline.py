"""DCGAN against today's baseline (R3GAN's loss and penalties, and its network) at one CPU budget,
on digits and clothes, scored with the packaged classifiers; and dcgan's own defaults re-measured.

    python benchmarks/modern_baseline.py                       # 1,500 steps, both datasets
    python benchmarks/modern_baseline.py --data mnist-mini --steps 300 --jobs 1
    python benchmarks/modern_baseline.py --variants dcgan,lr-2x,ema-0.995 --seeds 0,1

Variants (each `ganforge train` with its model's defaults plus the variant's flags, the same
steps and batch unless the variant changes them; `--list` prints them all):
    dcgan            the default DCGAN (bce, smoothing, EMA; rates 1.6e-3/8e-4, Adam (0, 0.99))
    dcgan-0.1        dcgan as it trained until 0.1 (rates 4e-4/2e-4, Adam (0.5, 0.999))
    dcgan-rpgan      dcgan with --loss relativistic --r1 R --r2 R (R3GAN's objective)
    r3gan            --model r3gan (its recipe: RpGAN + R1 + R2 and its network)
    lr-*, ema-*, ... dcgan-0.1 with one option changed, as measured to choose today's defaults
                     (learning rates: lr-2x, lr-4x 1.6e-3/8e-4; EMA, smoothing, batch, Adam's
                     betas, rate decay); the batch variants keep the images seen (steps x batch)

Each run is trained in a process of its own with one thread (--jobs at a time), then scored
on 5,000 samples with `ganforge eval` in the features of the data's packaged classifier
(mnist for mnist-mini, fashion-mnist for Fashion-MNIST): FID, precision, recall, and the
classes found (classes holding >= 2% of the samples, out of 10). Printed: one Markdown table
with the training time per step, then the mean over seeds per data and variant. Run folders
stay under --out (a run already trained is only scored again).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTRACTOR = {"mnist-mini": "mnist", "fashion-mnist": "fashion-mnist"}
DCGAN = ("--model", "dcgan")
# name -> (flags, steps multiplier, batch multiplier)
# dcgan's defaults until 0.1: the base the one-option variants were measured against
DEFAULTS_01 = {"--lr-g": "4e-4", "--lr-d": "2e-4", "--beta1": "0.5", "--beta2": "0.999"}


def on_01(*pairs: str) -> tuple[str, ...]:
    """dcgan with the 0.1 defaults, the given flag/value pairs replacing or joining them."""
    options = {**DEFAULTS_01, **dict(zip(pairs[::2], pairs[1::2], strict=True))}
    return (*DCGAN, *(item for pair in options.items() for item in pair))


LR_4X = ("--lr-g", "1.6e-3", "--lr-d", "8e-4")
VARIANTS: dict[str, tuple[tuple[str, ...], float, float]] = {
    "dcgan": (DCGAN, 1, 1),
    "dcgan-0.1": (on_01(), 1, 1),
    "dcgan-rpgan": ((*DCGAN, "--loss", "relativistic", "--r1", "{r}", "--r2", "{r}"), 1, 1),
    "r3gan": (("--model", "r3gan"), 1, 1),
    "lr-equal": (on_01("--lr-g", "2e-4", "--lr-d", "2e-4"), 1, 1),
    "lr-2x": (on_01("--lr-g", "8e-4", "--lr-d", "4e-4"), 1, 1),
    "lr-4x": (on_01(*LR_4X), 1, 1),
    "lr-cosine": (on_01("--lr-decay", "cosine"), 1, 1),
    "lr-2x-cosine": (on_01("--lr-g", "8e-4", "--lr-d", "4e-4", "--lr-decay", "cosine"), 1, 1),
    "ema-0.99": (on_01("--ema-decay", "0.99"), 1, 1),
    "ema-0.995": (on_01("--ema-decay", "0.995"), 1, 1),
    "ema-0.9995": (on_01("--ema-decay", "0.9995"), 1, 1),
    "no-smoothing": (on_01("--label-smoothing", "0"), 1, 1),
    "smoothing-0.2": (on_01("--label-smoothing", "0.2"), 1, 1),
    "batch-32": (on_01(), 2, 0.5),
    "batch-128": (on_01(), 0.5, 2),
    "adam-0-0.99": (on_01("--beta1", "0", "--beta2", "0.99"), 1, 1),
    "lr-4x-adam-0-0.99": (on_01(*LR_4X, "--beta1", "0", "--beta2", "0.99"), 1, 1),  # = dcgan
}
CLASS_SHARE = 0.02  # a class is found when at least this share of the samples falls in it


def train_and_score(job: tuple[str, str, int, int, str, float, int]) -> dict:
    data, variant, steps, batch, out, gamma, seed = job
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from ganforge.cli import main
    from ganforge.evaluate import evaluate_run
    from ganforge.metrics.registry import load_extractor
    from ganforge.run import Run

    flags, step_factor, batch_factor = VARIANTS[variant]
    steps, batch = round(steps * step_factor), round(batch * batch_factor)
    run_dir = Path(out) / (f"{data}-{variant}" + (f"-seed{seed}" if seed else ""))
    seconds = None
    if not (run_dir / "checkpoints").is_dir():
        argv = ["train", *(a.format(r=gamma) for a in flags), "--data", data, "--seed", str(seed)]
        argv += ["--steps", str(steps), "--batch-size", str(batch), "--out", str(run_dir)]
        argv += ["--checkpoint-every", str(steps), "--sample-every", str(steps), "--no-progress"]
        started = time.perf_counter()
        if main(argv) != 0:
            return {"data": data, "variant": variant, "seed": seed, "error": "training failed"}
        seconds = time.perf_counter() - started
    extractor = EXTRACTOR[data]
    result = evaluate_run(run_dir, n=5000, metrics="fid,pr", extractor=extractor, write=True)
    run = Run(run_dir)
    samples = run.sample(5000, seed=1)  # uint8 NHWC
    classifier = load_extractor(extractor)
    counts = np.zeros(10)
    with torch.no_grad():
        for start in range(0, len(samples), 500):
            chunk = torch.from_numpy(samples[start : start + 500]).permute(0, 3, 1, 2)
            counts += np.bincount(classifier(chunk)[1].argmax(1).numpy(), minlength=10)
    found = int((counts / counts.sum() >= CLASS_SHARE).sum())
    metrics = result["metrics"]
    return {
        "data": data,
        "variant": variant,
        "seed": seed,
        "steps": steps,
        "batch": batch,
        "s_per_step": None if seconds is None else seconds / steps,
        "fid": metrics["fid"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "classes": found,
    }


def print_tables(results: list[dict]) -> None:
    print("| data | variant | seed | steps x batch | s/step | FID | precision | recall | classes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['data']} | {r['variant']} | {r['seed']} | {r['error']} |")
            continue
        step = "—" if r["s_per_step"] is None else f"{r['s_per_step']:.3f}"
        print(
            f"| {r['data']} | {r['variant']} | {r['seed']} | {r['steps']} x {r['batch']} | "
            f"{step} | {r['fid']:.1f} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['classes']}/10 |"
        )
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        if "error" not in r:
            groups.setdefault((r["data"], r["variant"]), []).append(r)
    if all(len(g) == 1 for g in groups.values()):
        return
    print("\nmean over seeds (min classes)")
    print("| data | variant | seeds | FID | precision | recall | classes |")
    print("|---|---|---|---|---|---|---|")
    for (data, variant), rows in groups.items():
        mean = {k: statistics.fmean(r[k] for r in rows) for k in ("fid", "precision", "recall")}
        print(
            f"| {data} | {variant} | {len(rows)} | {mean['fid']:.1f} | {mean['precision']:.3f} | "
            f"{mean['recall']:.3f} | {min(r['classes'] for r in rows)}/10 |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-mini,fashion-mnist")
    parser.add_argument("--variants", default="dcgan,dcgan-rpgan,r3gan")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gamma", type=float, default=1.0, help="dcgan-rpgan's R1 and R2")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    parser.add_argument("--out", default=str(HERE / "out" / "modern_baseline"))
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    args = parser.parse_args()
    if args.list:
        for name, (flags, step_factor, batch_factor) in VARIANTS.items():
            print(f"{name:14} {' '.join(flags)}  steps x{step_factor:g} batch x{batch_factor:g}")
        return
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)} (--list shows them)")
    jobs = [
        (data, variant, args.steps, args.batch_size, args.out, args.gamma, int(seed))
        for seed in args.seeds.split(",")
        for data in args.data.split(",")
        for variant in args.variants.split(",")
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_and_score, jobs))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    name = "results.json" if args.seeds == "0" else f"results-seeds{args.seeds}.json"
    (Path(args.out) / name).write_text(json.dumps(results, indent=1))
    print(f"{args.steps} steps of {args.batch_size} (unless the variant says), one thread per run")
    print_tables(results)


if __name__ == "__main__":
    main()

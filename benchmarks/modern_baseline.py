"""DCGAN against today's baseline (R3GAN's loss and penalties, and its network) at one CPU budget,
on digits and clothes, scored with the packaged classifiers.

    python benchmarks/modern_baseline.py                       # 1,500 steps, both datasets
    python benchmarks/modern_baseline.py --data mnist-mini --steps 300 --jobs 1

Variants (each `ganforge train` with its model's defaults, the same steps and batch):
    dcgan            the default DCGAN (bce, label smoothing, EMA)
    dcgan-rpgan      dcgan with --loss relativistic --r1 R --r2 R (R3GAN's objective)
    r3gan            --model r3gan (its recipe: RpGAN + R1 + R2 and its network)

Each run is trained in a process of its own with one thread (--jobs at a time), then scored
on 5,000 samples with `ganforge eval` in the features of the data's packaged classifier
(mnist for mnist-mini, fashion-mnist for Fashion-MNIST): FID, precision, recall, and the
classes found (classes holding >= 2% of the samples, out of 10). Printed: one Markdown table
with the training time per step. Run folders stay under --out (a run already trained is only
scored again).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTRACTOR = {"mnist-mini": "mnist", "fashion-mnist": "fashion-mnist"}
VARIANTS = {
    "dcgan": ("--model", "dcgan"),
    "dcgan-rpgan": ("--model", "dcgan", "--loss", "relativistic", "--r1", "{r}", "--r2", "{r}"),
    "r3gan": ("--model", "r3gan"),
}
CLASS_SHARE = 0.02  # a class is found when at least this share of the samples falls in it


def train_and_score(job: tuple[str, str, int, int, str, float]) -> dict:
    data, variant, steps, batch, out, gamma = job
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from ganforge.cli import main
    from ganforge.evaluate import evaluate_run
    from ganforge.metrics.registry import load_extractor
    from ganforge.run import Run

    run_dir = Path(out) / f"{data}-{variant}"
    seconds = None
    if not (run_dir / "checkpoints").is_dir():
        argv = ["train", *(a.format(r=gamma) for a in VARIANTS[variant]), "--data", data]
        argv += ["--steps", str(steps), "--batch-size", str(batch), "--out", str(run_dir)]
        argv += ["--checkpoint-every", str(steps), "--sample-every", str(steps), "--no-progress"]
        started = time.perf_counter()
        if main(argv) != 0:
            return {"data": data, "variant": variant, "error": "training failed"}
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
        "s_per_step": None if seconds is None else seconds / steps,
        "fid": metrics["fid"],
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "classes": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist-mini,fashion-mnist")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gamma", type=float, default=1.0, help="dcgan-rpgan's R1 and R2")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each")
    parser.add_argument("--out", default=str(HERE / "out" / "modern_baseline"))
    args = parser.parse_args()
    jobs = [
        (data, variant, args.steps, args.batch_size, args.out, args.gamma)
        for data in args.data.split(",")
        for variant in args.variants.split(",")
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_and_score, jobs))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=1))
    print(f"{args.steps} steps of {args.batch_size}, one thread per run")
    print("| data | variant | s/step | FID | precision | recall | classes found |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['data']} | {r['variant']} | {r['error']} |")
            continue
        step = "—" if r["s_per_step"] is None else f"{r['s_per_step']:.3f}"
        print(
            f"| {r['data']} | {r['variant']} | {step} | {r['fid']:.2f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['classes']}/10 |"
        )


if __name__ == "__main__":
    main()

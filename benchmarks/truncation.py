"""The truncation trick's quality/diversity trade-off: precision, recall and FID against psi.

    python benchmarks/truncation.py                    # trains a dcgan on mnist-mini, 1,500 steps
    python benchmarks/truncation.py runs/demo          # an existing run of images
    python benchmarks/truncation.py --n 2000 --steps 200   # a quick end-to-end check

Evaluates the run's EMA generator (`ganforge eval RUN --truncation PSI`, i.e. `evaluate_run`
with `truncation=`) on --n samples of the same seed at each psi of --psi (the scale mode:
z -> psi * z; 1 is the untruncated generator) and each threshold of --thresholds (the resample
mode: every |z_i| above it drawn again), with the packaged digit classifier's features
(extractor "mnist"): precision (samples that look real) and recall (the real variety covered),
k = 3 (Kynkäänniemi et al. 2019), FID, and the digits found (classes holding at least a fifth
of a fair share). Truncation should raise precision and lower recall as psi falls.

Without a RUN it trains `ganforge.train(model="dcgan", data="mnist-mini", steps=--steps)` into
--out (reusing a run already there, so the table can be re-scored without retraining).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

import ganforge
from ganforge.evaluate import evaluate_run
from ganforge.sampling import Truncation

HERE = Path(__file__).resolve().parent
METRICS = "fid,pr,modes"
COLUMNS = ("precision", "recall", "fid", "classes_found")


def trained_run(out: Path, steps: int, seed: int) -> ganforge.Run:
    """The dcgan run in `out`: the one already there, or one trained now (timed)."""
    if (out / "config.json").is_file():
        run = ganforge.load_run(out)
        print(f"using the run already in {out} (step {run.step})", flush=True)
        return run
    print(f"training dcgan on mnist-mini for {steps} steps -> {out}", flush=True)
    started = time.perf_counter()
    run = ganforge.train(
        model="dcgan", data="mnist-mini", steps=steps, seed=seed, out=str(out), progress=False
    )
    print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
    return run


def measure(run: ganforge.Run, truncations: list[Truncation], n: int, seed: int) -> list[dict]:
    """One evaluation per truncation, all on the same seed's noise (nothing written to RUN)."""
    rows = []
    for truncation in truncations:
        started = time.perf_counter()
        result = evaluate_run(
            run,
            n=n,
            metrics=METRICS,
            extractor="mnist",
            seed=seed,
            truncation=truncation,
            write=False,
        )
        rows.append({"truncation": truncation, **{c: result["metrics"][c] for c in COLUMNS}})
        print(f"  {truncation}: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """A Markdown table: mode, psi, precision, recall, FID, digits found."""
    lines = [
        "| mode | psi | precision | recall | FID | digits found |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        truncation = row["truncation"]
        lines.append(
            f"| {truncation.mode} | {truncation.psi:g} | {row['precision']:.3f} | "
            f"{row['recall']:.3f} | {row['fid']:.2f} | {row['classes_found']}/10 |"
        )
    return "\n".join(lines)


def numbers(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", metavar="RUN", help="a run of images (default: train)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps (default: 1500)")
    parser.add_argument("--n", type=int, default=10000, help="samples per psi (default: 10000)")
    parser.add_argument("--psi", default="0.25,0.5,0.75,1", help="scale-mode psi values")
    parser.add_argument(
        "--thresholds", default="0.5,1,1.5,2", help="resample-mode thresholds ('' for none)"
    )
    parser.add_argument("--seed", type=int, default=0, help="training and sampling seed")
    parser.add_argument(
        "--out", default=str(HERE / "out" / "truncation_dcgan"), help="where to train"
    )
    args = parser.parse_args()
    print(
        f"torch threads: {torch.get_num_threads()}, load average: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    run = (
        ganforge.load_run(args.run)
        if args.run
        else trained_run(Path(args.out), args.steps, args.seed)
    )
    truncations = [Truncation(psi) for psi in numbers(args.psi)]
    truncations += [Truncation(psi, "resample") for psi in numbers(args.thresholds)]
    rows = measure(run, truncations, args.n, args.seed)
    print()
    print(
        f"{run.config.model} on {run.config.data}, step {run.step}; {args.n} samples (seed "
        f"{args.seed}) per row vs all real images, features of the packaged digit classifier"
    )
    print(table(rows))


if __name__ == "__main__":
    main()

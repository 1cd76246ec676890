"""ganforge's DCGAN defaults vs a plain PyTorch-tutorial loop, same networks, same step budget.

    python benchmarks/compare_tutorial.py                # 1500 steps each (a few minutes on CPU)
    python benchmarks/compare_tutorial.py --steps 200    # a quick end-to-end check

Trains `ganforge.train(model="dcgan", data="mnist-mini", steps=S)` (its defaults: G's
learning rate 1.6e-3 against D's 8e-4, Adam (0, 0.99), label smoothing 0.1, EMA of G for
sampling, plus its checkpoints, grids and curve plots, which count in its wall time) and
`plain_dcgan_loop.train_plain(S)`, then scores --n-eval samples of each with ganforge's shipped
digit classifier (`ganforge.metrics`, extractor "mnist"):

    recognisable   % of samples the classifier assigns a class with probability >= 0.9
    classes        digits holding >= 2% of the samples (out of 10)
    KL unif        KL(class histogram || uniform), nats (0 = balanced, 2.30 = one digit)
    cFID           Frechet distance of classifier features to all 5,000 real digits

Extra rows: ganforge's raw (non-EMA) G, the plain G in eval and in train mode (the tutorial's
pictures come from train mode), and the 1,000 held-out real digits as a reference point.
Wall and CPU times are of whole training calls and are noisy if the machine is shared.
Writes benchmarks/out/compare_tutorial_sS[_seedN].png (64-sample grids side by side), .json (scores)
and _samples.npz (the scored uint8 samples, NHWC, to re-score without retraining).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import ganforge  # noqa: E402
import ganforge.metrics as gm  # noqa: E402
from ganforge.data import load_dataset  # noqa: E402
from ganforge.metrics.train_extractor import stratified_split  # noqa: E402
from ganforge.report import image_grid  # noqa: E402
from plain_dcgan_loop import sample_plain, train_plain  # noqa: E402


def evaluate_samples(images: np.ndarray, classifier, real: gm.FeatureSet) -> dict:
    """Confidence, class histogram, classes found, KL to uniform and classifier FID."""
    fake = gm.extract_features(classifier, images)
    modes = gm.mode_coverage(fake.logits)
    return {
        "n": len(images),
        "recognisable": modes.confident,
        "histogram": list(modes.histogram),
        "classes_present": modes.classes_found,
        "kl_uniform": modes.kl_to_uniform,
        "classifier_fid": gm.frechet_distance(real.features, fake.features),
    }


def heldout_digits() -> np.ndarray:
    """The 1,000 mnist-mini digits the shipped classifier did not train on."""
    data = load_dataset("mnist-mini")
    return data.images[stratified_split(data.labels.numpy(), 100, 0)[1]].numpy()


def _fmt_row(name: str, seconds: tuple[float, float] | None, scores: dict) -> str:
    wall = f"{seconds[0]:8.1f} {seconds[1]:8.1f}" if seconds is not None else f"{'':>17}"
    return (
        f"{name:<38} {wall} {scores['recognisable'] * 100:11.1f}% "
        f"{scores['classes_present']:>4}/10 {scores['kl_uniform']:8.4f} "
        f"{scores['classifier_fid']:8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps for both")
    parser.add_argument("--n-eval", type=int, default=2000, help="samples scored per model")
    parser.add_argument("--seed", type=int, default=0, help="training and sampling seed")
    parser.add_argument("--out", default=str(HERE / "out"), help="folder for PNG, JSON, run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    S = args.steps

    classifier = gm.load_extractor("mnist")
    real = gm.real_features(load_dataset("mnist-mini").images, classifier, label="mnist-mini")
    print(f"digit classifier held-out accuracy: {classifier.spec.test_accuracy:.2%}")
    print(
        f"torch threads: {torch.get_num_threads()}, load average before: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )

    tag = f"s{S}" + (f"_seed{args.seed}" if args.seed else "")  # seeds may run side by side

    # ---- ganforge defaults ------------------------------------------------------------
    run_dir = out / f"ganforge_dcgan_{tag}"
    if (run_dir / "config.json").is_file():
        shutil.rmtree(run_dir)  # our own previous run of this script
    print(f"training ganforge dcgan defaults for {S} steps -> {run_dir}", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    run = ganforge.train(
        model="dcgan", data="mnist-mini", steps=S, seed=args.seed, out=str(run_dir), progress=False
    )
    t_ganforge = (time.perf_counter() - t0, time.process_time() - c0)
    print(f"  done in {t_ganforge[0]:.1f}s wall, {t_ganforge[1]:.1f}s CPU", flush=True)

    # ---- plain tutorial loop ----------------------------------------------------------
    print(f"training the plain tutorial loop for {S} steps", flush=True)
    t0, c0 = time.perf_counter(), time.process_time()
    netG = train_plain(S, batch_size=64, width=run.config.width, seed=args.seed)
    t_plain = (time.perf_counter() - t0, time.process_time() - c0)
    print(
        f"  done in {t_plain[0]:.1f}s wall, {t_plain[1]:.1f}s CPU; load average after: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )

    # ---- samples and scores -----------------------------------------------------------
    n, seed = args.n_eval, args.seed + 12345  # sampling noise independent of training seed
    samples = {
        "ganforge defaults (EMA G, eval)": run.sample(n, seed=seed),
        "ganforge raw G (ema=False, eval)": run.sample(n, seed=seed, ema=False),
        "plain loop, G eval mode": sample_plain(netG, n, seed, mode="eval"),
        "plain loop, G train mode (tutorial)": sample_plain(netG, n, seed, mode="train"),
    }
    times = {
        "ganforge defaults (EMA G, eval)": t_ganforge,
        "ganforge raw G (ema=False, eval)": None,
        "plain loop, G eval mode": t_plain,
        "plain loop, G train mode (tutorial)": None,
    }
    keys = ["ganforge_ema", "ganforge_raw", "plain_eval", "plain_train"]
    np.savez_compressed(
        out / f"compare_tutorial_{tag}_samples.npz",
        **dict(zip(keys, samples.values(), strict=True)),
    )
    results = {name: evaluate_samples(images, classifier, real) for name, images in samples.items()}
    reference_name = "real held-out digits (n=1000)"
    results[reference_name] = evaluate_samples(heldout_digits(), classifier, real)
    times[reference_name] = None

    header = (
        f"{'model (' + str(S) + ' steps, ' + str(n) + ' samples)':<38} {'wall s':>8} "
        f"{'CPU s':>8} "
        f"{'recognisable':>12} {'classes':>7} {'KL unif':>8} {'cFID':>8}"
    )
    lines = [header, "-" * len(header)]
    lines += [_fmt_row(name, times[name], scores) for name, scores in results.items()]
    table = "\n".join(lines)
    print()
    print(table)
    print(
        "(wall s / CPU s: one whole training call each, data loading included; ganforge's "
        "includes its checkpoints, sample grids and curve plots. Rows without a time share "
        "the row above's training run. Timings are noisy when the machine is shared; CPU s "
        "(process time, all threads) is less affected by other jobs than wall s.)"
    )
    print()
    for name, scores in results.items():
        hist = " ".join(f"{p * 100:4.1f}" for p in scores["histogram"])
        print(f"class % 0-9  {name:<38} {hist}")

    # ---- side-by-side picture -------------------------------------------------------------
    panels = [
        ("ganforge defaults\n(EMA G, eval mode)", "ganforge defaults (EMA G, eval)"),
        (
            "plain tutorial loop\n(G in train mode, as the tutorial shows)",
            "plain loop, G train mode (tutorial)",
        ),
        ("plain tutorial loop\n(G in eval mode)", "plain loop, G eval mode"),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.9))
    for axis, (title, name) in zip(axes, panels, strict=True):
        grid = image_grid(samples[name][:64], columns=8)
        axis.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        r = results[name]
        axis.set_title(
            f"{title}\nrecognisable {r['recognisable']:.0%}, cFID {r['classifier_fid']:.1f}",
            fontsize=10,
        )
        axis.axis("off")
    figure.suptitle(
        f"DCGAN on mnist-mini, {S} steps, batch 64, same networks (first 64 of {n} scored samples)"
    )
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    png = out / f"compare_tutorial_{tag}.png"
    figure.savefig(png, dpi=100)
    plt.close(figure)

    record = {
        "steps": S,
        "n_eval": n,
        "seed": args.seed,
        "classifier_heldout_accuracy": classifier.spec.test_accuracy,
        "wall_seconds": {"ganforge": t_ganforge[0], "plain": t_plain[0]},
        "cpu_seconds": {"ganforge": t_ganforge[1], "plain": t_plain[1]},
        "load_average_end": os.getloadavg(),
        "scores": results,
        "ganforge_run": str(run_dir),
        "table": table,
    }
    (out / f"compare_tutorial_{tag}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {png}\nwrote {out / f'compare_tutorial_{tag}.json'}")


if __name__ == "__main__":
    main()

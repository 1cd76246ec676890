"""Evaluating a run: sample its generator, measure the samples against the run's real data.

`ganforge eval RUN` and the in-training `--eval-every` share this code. Real-data features are
cached (ganforge.metrics.real_features), so an evaluation costs the fake samples only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.atomic import atomic_write_text
from ganforge.bounds import MAX_EVAL_SAMPLES, check_at_most, check_noise, check_seed
from ganforge.config import TrainConfig
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import FeatureExtractor, FeatureSet, load_extractor, real_features
from ganforge.metrics.class_scores import inception_score_of_logits, mode_coverage_of_logits
from ganforge.metrics.conditional import class_accuracy, intra_class_fid
from ganforge.metrics.features import extract_features
from ganforge.metrics.frechet import frechet_distance
from ganforge.metrics.kernel_distance import kid_of_features
from ganforge.metrics.prdc import density_coverage_of_features, precision_recall_of_features
from ganforge.metrics.registry import default_extractor
from ganforge.models import model_kind
from ganforge.run import Run
from ganforge.sampling import balanced_labels, sample_batches

EVAL_FILE = "eval.json"
METRICS = ("fid", "kid", "pr", "dc", "modes", "is", "cond")
NEEDS_CLASSIFIER = ("modes", "is")
CONDITIONAL_ONLY = ("cond",)  # class accuracy and intra-class FID of class-conditional runs
# The scalars --eval-metric may pick, and whether lower is better
SCORES = {  # keys: config.EVAL_METRICS
    "fid": True,
    "kid": True,
    "precision": False,
    "recall": False,
    "density": False,
    "coverage": False,
    "kl_to_uniform": True,
    "is": False,
    "class_accuracy": False,
    "intra_fid": True,
    "l1": True,  # a translator's, on held-out pairs (translate.py)
    "psnr": False,
    "ssim": False,
}
SCORE_GROUP = {
    "fid": "fid",
    "kid": "kid",
    "precision": "pr",
    "recall": "pr",
    "density": "dc",
    "coverage": "dc",
    "kl_to_uniform": "modes",
    "is": "is",
    "class_accuracy": "cond",
    "intra_fid": "cond",
}
BIAS_NOTE = (
    "FID is biased upwards at small sample sizes: compare values only at the same N and with the "
    "same extractor (KID is unbiased). Domain-classifier FID is not comparable to Inception FID."
)


def parse_metrics(text: str | Sequence[str]) -> tuple[str, ...]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise GanforgeError(
            f"--metrics: unknown metric '{unknown[0] if unknown else ''}' "
            f"(choose from {','.join(METRICS)})"
        )
    return tuple(dict.fromkeys(names))


def compute_metrics(
    real: FeatureSet, fake: FeatureSet, metrics: Sequence[str], seed: int = 0
) -> dict[str, float | int | list[float]]:
    """The chosen metric groups between two feature sets, as a flat dict of numbers."""
    out: dict[str, float | int | list[float]] = {}
    if "fid" in metrics:
        out["fid"] = frechet_distance(real.features, fake.features)
    if "kid" in metrics:
        result = kid_of_features(real.features, fake.features, seed=seed)
        out.update(kid=result.mean, kid_std=result.std)
    if "pr" in metrics:
        pr = precision_recall_of_features(real.features, fake.features)
        out.update(precision=pr.precision, recall=pr.recall)
    if "dc" in metrics:
        dc = density_coverage_of_features(real.features, fake.features)
        out.update(density=dc.density, coverage=dc.coverage)
    if any(m in metrics for m in NEEDS_CLASSIFIER) and fake.logits is None:
        raise GanforgeError(
            "--metrics: modes and is need a classifier extractor (e.g. --extractor mnist)"
        )
    if "modes" in metrics:
        modes = mode_coverage_of_logits(fake.logits)
        out.update(
            classes_found=modes.classes_found,
            num_classes=modes.num_classes,
            kl_to_uniform=modes.kl_to_uniform,
            confident=modes.confident,
            class_histogram=list(modes.histogram),
        )
    if "is" in metrics:
        score = inception_score_of_logits(fake.logits)
        out.update({"is": score.mean, "is_std": score.std})
    return out


@dataclass
class RealReference:
    """A run's real images under one extractor: what every evaluation compares against."""

    extractor: FeatureExtractor
    features: FeatureSet
    dataset: str
    n_real: int
    labels: np.ndarray  # the real images' class labels (-1: unknown)
    class_names: list[str]


def real_reference(
    config: TrainConfig,
    extractor: str | Path | FeatureExtractor | None = None,
    *,
    device: str | torch.device = "cpu",
    use_cache: bool = True,
    progress: bool = False,
    inception_weights: str | Path | None = None,
) -> RealReference:
    """Load the run's dataset at the run's resolution and channels and featurise it (cached)."""
    data = load_dataset(
        config.data,
        resolution=config.resolution,
        channels=config.channels,
        data_root=config.data_root,
        trust_pickle=config.trust_pickle,
        progress=progress,
    )
    chosen = extractor if extractor is not None else default_extractor(data.channels, config.data)
    model = load_extractor(chosen, device=str(device), inception_weights=inception_weights)
    features = real_features(
        data.images,
        model,
        label=f"{config.data}-{config.resolution}px-{config.channels}ch",
        use_cache=use_cache,
        device=device,
        progress=progress,
    )
    return RealReference(
        model, features, config.data, len(data.images), data.labels.numpy(), data.class_names
    )


def measure_generator(
    family,
    network: torch.nn.Module,
    reference: RealReference,
    metrics: Sequence[str],
    *,
    n: int,
    seed: int = 0,
    batch_size: int = 250,
    progress: bool = False,
    class_names: Sequence[str] = (),
) -> dict:
    """Sample `n` images from `network` (seeded) and compute `metrics` against `reference`.
    A class-conditional generator is asked for every class (`class_names`) equally often."""
    labels = None
    if family.kind.class_conditional:
        labels = balanced_labels(n, family.num_classes)
    fake = extract_features(
        reference.extractor,
        sample_batches(family, network, n, seed, batch_size, labels),
        total=n,
        progress=progress,
    )
    values = compute_metrics(reference.features, fake, metrics, seed=seed)
    if "cond" in metrics:
        values.update(conditional_metrics(reference, fake, labels.numpy(), class_names))
    return values


def conditional_metrics(
    reference: RealReference, fake: FeatureSet, asked: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Intra-class FID over the classes the real data has, and, when the extractor classifies
    the same class names, the accuracy of the samples asked for as each class."""
    real_classes = sorted(c for c in set(reference.labels.tolist()) if c >= 0)
    mean, per_class = intra_class_fid(
        reference.features.features,
        reference.labels,
        fake.features,
        asked,
        real_classes,
    )
    out: dict = {"intra_fid": mean, "intra_fid_per_class": list(per_class)}
    names = list(getattr(reference.extractor, "class_names", ()))
    if fake.logits is not None and all(name in names for name in class_names):
        # the extractor's index of each asked class, by name
        asked_as = np.array([names.index(class_names[a]) for a in asked])
        accuracy = class_accuracy(fake.logits, asked_as, len(names))
        per_class = [accuracy.per_class[names.index(name)] for name in class_names]
        out.update(
            class_accuracy=accuracy.overall,
            worst_class_accuracy=min(per_class),
            class_accuracy_per_class=per_class,
        )
    return out


def evaluate_run(
    run: str | Path | Run,
    *,
    n: int = 10000,
    metrics: str | Sequence[str] | None = None,
    extractor: str | Path | FeatureExtractor | None = None,
    checkpoint: str | Path | None = None,
    ema: bool = True,
    seed: int = 0,
    device: str = "cpu",
    write: bool = True,
    progress: bool = False,
    use_cache: bool = True,
    inception_weights: str | Path | None = None,
    pairs: str | Path | None = None,
) -> dict:
    """Evaluate a run's generator; returns the result and (with `write`) saves RUN/eval.json.
    A translator (pix2pix) is measured on held-out pairs instead (translate.py; `pairs`: a
    folder of them, needed when the run's data has no test split)."""
    run = run if isinstance(run, Run) else Run(run)
    check_at_most("--n", n, MAX_EVAL_SAMPLES)  # before any work: features of every sample
    check_noise("--n", n, run.config.z_dim)
    check_seed("--seed", seed)
    if model_kind(run.config.model).translator:
        from ganforge.translate import evaluate_translation

        if metrics is not None:
            raise GanforgeError("--metrics: a translator is measured by L1, PSNR and SSIM only")
        return evaluate_translation(
            run, pairs=pairs, n=n, checkpoint=checkpoint, ema=ema, device=device, write=write
        )
    if n < 2:
        raise GanforgeError(f"--n: need at least 2 samples, got {n}")
    started = time.perf_counter()
    chosen = parse_metrics(metrics) if metrics is not None else METRICS
    family = run.load(checkpoint)
    if not family.kind.class_conditional:
        asked = [m for m in chosen if m in CONDITIONAL_ONLY]
        if asked and metrics is not None:
            raise GanforgeError(
                f"--metrics: {','.join(asked)} needs a class-conditional run (cgan, acgan), "
                f"not {run.config.model}"
            )
        chosen = tuple(m for m in chosen if m not in CONDITIONAL_ONLY)
    step = _checkpoint_step(run, checkpoint)
    reference = real_reference(
        run.config,
        extractor,
        device=device,
        use_cache=use_cache,
        progress=progress,
        inception_weights=inception_weights,
    )
    notes = [BIAS_NOTE]
    if reference.extractor.num_classes == 0:
        skipped = [m for m in chosen if m in NEEDS_CLASSIFIER]
        if skipped and metrics is not None:
            raise GanforgeError(
                f"--metrics: {','.join(skipped)} need a classifier extractor, and "
                f"'{reference.extractor.name}' has no classifier head"
            )
        chosen = tuple(m for m in chosen if m not in NEEDS_CLASSIFIER)
        if skipped:
            notes.append(f"skipped {','.join(skipped)}: the extractor has no classifier head")
    network = run.generator(ema).to(device)
    values = measure_generator(
        family,
        network,
        reference,
        chosen,
        n=n,
        seed=seed,
        progress=progress,
        class_names=run.config.class_names,
    )
    result = {
        "run": str(run.path),
        "step": step,
        "checkpoint": str(checkpoint) if checkpoint else "newest",
        "ema": ema and run.has_ema,
        "dataset": reference.dataset,
        "n_fake": n,
        "n_real": reference.n_real,
        "seed": seed,
        "extractor": _describe(reference.extractor),
        "metrics": values,
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if write:
        write_eval_file(result)
    return result


def write_eval_file(result: dict) -> Path:
    """RUN/eval.json, the last evaluation of a run (`result["run"]` names the run folder)."""
    path = Path(result["run"]) / EVAL_FILE
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path


def _checkpoint_step(run: Run, checkpoint) -> int:
    if checkpoint is None or str(checkpoint) == "newest":
        return run.step
    from ganforge.training.checkpoint import load_checkpoint

    _, meta = load_checkpoint(run.checkpoint_path(checkpoint))
    return int(meta.get("step", 0))


def _describe(extractor: FeatureExtractor) -> dict:
    info = {"name": extractor.name, "identity": extractor.identity()[:16]}
    spec = getattr(extractor, "spec", None)
    if spec is not None:
        info.update(trained_on=spec.trained_on, test_accuracy=spec.test_accuracy)
    if hasattr(extractor, "resize"):
        info["resize"] = extractor.resize
    return info


ROWS = (
    ("fid", "FID", "lower is better"),
    ("kid", "KID", "lower is better; unbiased"),
    ("precision", "precision", "share of samples that look real"),
    ("recall", "recall", "share of the real variety covered"),
    ("density", "density", "~1 when samples sit where real data is dense"),
    ("coverage", "coverage", "share of real neighbourhoods with a sample"),
    ("classes_found", "classes found", "mode coverage"),
    ("kl_to_uniform", "class KL to uniform", "0 = balanced classes"),
    ("confident", "confident", "share classified with p >= 0.9"),
    ("is", "IS", "higher is better"),
    ("class_accuracy", "class accuracy", "samples recognised as the class asked for"),
    ("worst_class_accuracy", "worst class", "the lowest per-class accuracy"),
    ("intra_fid", "intra-class FID", "mean FID within each class; lower is better"),
)


def format_table(result: dict) -> str:
    """The evaluation as a plain-text table with a header saying what was compared."""
    if result.get("task") == "translation":
        from ganforge.translate import format_translation_table

        return format_translation_table(result)
    values = result["metrics"]
    ex = result["extractor"]
    lines = [
        f"{result['run']} at step {result['step']} ({'EMA' if result['ema'] else 'raw'} generator)",
        f"{result['n_fake']} samples vs {result['n_real']} real images of {result['dataset']}; "
        f"features: {ex['name']}"
        + (f" (test accuracy {ex['test_accuracy']:.1%})" if "test_accuracy" in ex else ""),
        "",
    ]
    rows = []
    for key, label, meaning in ROWS:
        if key not in values:
            continue
        value = values[key]
        if key == "kid":
            text = f"{value:.5f} ± {values['kid_std']:.5f}"
        elif key == "is":
            text = f"{value:.3f} ± {values['is_std']:.3f}"
        elif key == "classes_found":
            text = f"{value} / {values['num_classes']}"
        else:
            text = f"{value:.3f}" if key in ("fid", "intra_fid") else f"{value:.4f}"
        rows.append((label, text, meaning))
    width = max((len(r[0]) for r in rows), default=0)
    value_width = max((len(r[1]) for r in rows), default=0)
    lines += [f"  {a:<{width}}  {b:>{value_width}}  {c}" for a, b, c in rows]
    if "class_accuracy_per_class" in values:
        shares = ", ".join(f"{v:.0%}" for v in values["class_accuracy_per_class"])
        lines.append(f"  accuracy by class asked for: {shares}")
    lines += ["", *result["notes"]]
    return "\n".join(lines)

"""Evaluating a run: sample its generator, measure the samples against the run's real data.

`ganforge eval RUN` and the in-training `--eval-every` share this code. Real-data features are
cached (ganforge.metrics.real_features), so an evaluation costs the fake samples only. An
evaluation of truncated noise (`--truncation`) records it and goes to a file of its own
(`eval_file_name`): RUN/eval.json always holds the generator's own, untruncated numbers.
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
from ganforge.data import STACKED_MNIST, load_dataset, load_points
from ganforge.data.stacked_mnist import SPLIT_SIZES as STACKED_SPLIT_SIZES
from ganforge.errors import GanforgeError
from ganforge.i18n import N_, _
from ganforge.metrics import FeatureExtractor, FeatureSet, load_extractor, real_features
from ganforge.metrics.catalog import MetricInputs, get_group, list_groups, list_metrics, measure
from ganforge.metrics.features import extract_features
from ganforge.metrics.registry import default_extractor
from ganforge.metrics.stacked_modes import SAMPLES as STACKED_SAMPLES
from ganforge.metrics.stacked_modes import channel_digits
from ganforge.models import model_kind, run_kind
from ganforge.run import Run
from ganforge.sampling import (
    NO_TRUNCATION,
    Truncation,
    as_truncation,
    balanced_labels,
    check_truncatable,
    sample_batches,
    sample_points,
)
from ganforge.translate import checkpoint_step, evaluate_translation, format_translation_table

EVAL_FILE = "eval.json"
METRICS = tuple(group.name for group in list_groups(option=True))  # --metrics choices
MIXTURE_NOTE = (
    "PacGAN's Table 1 protocol (Lin et al. 2018): 2,500 samples; a sample within 3 std of its "
    "nearest mode is high quality; a mode holding at least 1/5 of its fair share is captured; "
    "reverse KL of the high-quality samples' modes to uniform."
)
STACKED_NOTE = N_(
    "PacGAN's Table 2 protocol (Lin et al. 2018): 26,000 samples; each channel read as a digit "
    "by the packaged classifier (mnist); a mode (digit triple) holding at least one sample is "
    "found; KL of the samples' mode histogram to uniform."
)
STACKED_EXTRACTOR = "mnist"  # the packaged digit classifier reads each channel
BIAS_NOTE = N_(
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


POINT_SAMPLES = 2500  # PacGAN's Table 1 scores 2,500 samples of a run of points


@dataclass
class PointReference:
    """A run's point data as the mixture metrics read it: the centres of its modes and their
    std (metrics/mixture.py)."""

    modes: np.ndarray
    mode_std: float
    dataset: str
    n_real: int


def point_reference(config: TrainConfig) -> PointReference:
    """The modes of a run's point data, or a one-line error for data without modes."""
    data = load_points(config.data, config.data_root)
    if data.modes is None:
        raise GanforgeError(
            f"--data {config.data}: these points have no modes to count; the mode metrics "
            "measure a Gaussian mixture (ring8, grid25)"
        )
    return PointReference(data.modes.numpy(), data.mode_std, config.data, len(data))


@dataclass
class StackedReference:
    """What measures a stacked-MNIST run's modes: the digit classifier that reads each channel
    of a sample (metrics/stacked_modes.py)."""

    classifier: FeatureExtractor
    dataset: str
    n_real: int


def stacked_reference(
    config: TrainConfig, flag: str, device: str | torch.device = "cpu"
) -> StackedReference:
    """The digit classifier for a run on stacked-mnist, or a one-line error naming `flag` for
    a run on other data."""
    if config.data != STACKED_MNIST:
        raise GanforgeError(
            f"{flag}: counts the digit triples of a run on {STACKED_MNIST}, not on {config.data}"
        )
    if config.channels not in (None, 3):
        raise GanforgeError(
            f"{flag}: reads a digit in each of R, G and B, and this run has "
            f"{config.channels} channel(s) (trained with --channels {config.channels})"
        )
    classifier = load_extractor(STACKED_EXTRACTOR, device=str(device))
    return StackedReference(classifier, config.data, STACKED_SPLIT_SIZES["train"])


def measures_stacked(group: str) -> bool:
    """Whether metric group `group` counts stacked-MNIST modes (its runs' own metrics)."""
    return "stacked" in get_group(group).needs


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
    reference: RealReference | PointReference | StackedReference,
    metrics: Sequence[str],
    *,
    n: int,
    seed: int = 0,
    batch_size: int = 250,
    progress: bool = False,
    class_names: Sequence[str] = (),
    truncation: Truncation = NO_TRUNCATION,
) -> dict:
    """Sample `n` images from `network` (seeded, the noise truncated by `truncation`) and
    compute `metrics` against `reference`. A class-conditional generator is asked for every
    class (`class_names`) equally often; a generator of points is measured against the modes of
    a PointReference, and the channels of a stacked-MNIST generator are read as digits by a
    StackedReference."""
    if isinstance(reference, PointReference):
        inputs = MetricInputs(
            points=sample_points(family, network, n, seed, truncation=truncation),
            modes=reference.modes,
            mode_std=reference.mode_std,
        )
        return measure(metrics, inputs)
    labels = None
    if family.kind.class_conditional:
        labels = balanced_labels(n, family.num_classes)
    samples = sample_batches(family, network, n, seed, batch_size, labels, truncation)
    if isinstance(reference, StackedReference):
        digits = channel_digits(reference.classifier, samples)
        return measure(metrics, MetricInputs(channel_digits=digits))
    fake = extract_features(
        reference.extractor,
        samples,
        total=n,
        progress=progress,
    )
    inputs = MetricInputs(
        real=reference.features,
        fake=fake,
        seed=seed,
        real_labels=reference.labels,
        fake_labels=None if labels is None else labels.numpy(),
        class_names=tuple(class_names),
        classifier_names=tuple(getattr(reference.extractor, "class_names", ())),
    )
    return measure(metrics, inputs)


def evaluate_run(
    run: str | Path | Run,
    *,
    n: int | None = None,
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
    truncation: float | Truncation | None = None,
) -> dict:
    """Evaluate a run's generator on `n` samples (default: 10,000; 2,500 points; 26,000 for
    stacked-mnist); returns the result and (with `write`) saves RUN/eval.json. A translator
    (pix2pix) is measured on held-out pairs instead (translate.py; `pairs`: a folder of them,
    needed when the run's data has no test split); a generator of points by the modes of its
    data; a run on stacked-mnist by its digit triples (other groups when `metrics` names
    them). `truncation` (as Run.sample's) is recorded in the result, which is then written to
    its own file, not eval.json."""
    truncation = as_truncation(truncation)
    run = run if isinstance(run, Run) else Run(run)
    check_truncatable(model_kind(run.config.model), truncation)
    points = run_kind(run.config).data == "points"
    stacked = run.config.data == STACKED_MNIST and run.config.channels == 3
    if n is None:
        n = POINT_SAMPLES if points else STACKED_SAMPLES if stacked else 10000
    check_at_most("--n", n, MAX_EVAL_SAMPLES)  # before any work: features of every sample
    check_noise("--n", n, run.config.z_dim)
    check_seed("--seed", seed)
    if model_kind(run.config.model).translator:
        if metrics is not None:
            raise GanforgeError("--metrics: a translator is measured by L1, PSNR and SSIM only")
        result = evaluate_translation(
            run, pairs=pairs, n=n, checkpoint=checkpoint, ema=ema, device=device
        )
        if write:
            write_eval_file(result)
        return result
    if n < 2:
        raise GanforgeError(f"--n: need at least 2 samples, got {n}")
    started = time.perf_counter()
    chosen = parse_metrics(metrics) if metrics is not None else METRICS
    if metrics is None:  # a run's own: a stacked-MNIST run's modes, and no other run's
        chosen = tuple(name for name in chosen if measures_stacked(name) == stacked)
    family = run.load(checkpoint)
    unfit = [name for name in chosen if not get_group(name).applies_to(family.kind)]
    if unfit and metrics is not None:
        needed = f"a class-conditional run (cgan, acgan), not {run.config.model}"
        if points:
            needed = "images; a run of points is measured by mixture"
        elif any("points" in get_group(name).needs for name in unfit):
            needed = "a run of points (mlp on ring8, grid25)"
        elif not all("classes" in get_group(name).needs for name in unfit):
            needed = f"another kind of run, not {run.config.model}"
        raise GanforgeError(f"--metrics: {','.join(unfit)} needs {needed}")
    chosen = tuple(name for name in chosen if name not in unfit)
    step = checkpoint_step(run, checkpoint)
    network = run.generator(ema).to(device)
    drawn = {"n": n, "seed": seed, "truncation": truncation}  # every group, the same samples
    counted: dict = {}  # the stacked-MNIST modes, measured on their own samples
    if any(measures_stacked(name) for name in chosen):
        counting = tuple(name for name in chosen if measures_stacked(name))
        modes = stacked_reference(run.config, f"--metrics {','.join(counting)}", device)
        counted = measure_generator(family, network, modes, counting, **drawn)
        chosen = tuple(name for name in chosen if name not in counting)
        if not chosen:
            result = _result(run, step, checkpoint, ema, modes, counted, started, **drawn)
            result.update(extractor=_describe(modes.classifier, "each channel"))
            result.update(notes=[STACKED_NOTE])
            if write:
                write_eval_file(result)
            return result
    if points:
        reference = point_reference(run.config)
        values = measure_generator(family, network, reference, chosen, **drawn)
        result = _result(run, step, checkpoint, ema, reference, values, started, **drawn)
        result.update(extractor={"name": "nearest mode"}, notes=[MIXTURE_NOTE])
        if write:
            write_eval_file(result)
        return result
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
        skipped = [name for name in chosen if "logits" in get_group(name).needs]
        if skipped and metrics is not None:
            raise GanforgeError(
                f"--metrics: {','.join(skipped)} need a classifier extractor, and "
                f"'{reference.extractor.name}' has no classifier head"
            )
        chosen = tuple(name for name in chosen if name not in skipped)
        if skipped:
            notes.append(f"skipped {','.join(skipped)}: the extractor has no classifier head")
    values = measure_generator(
        family,
        network,
        reference,
        chosen,
        progress=progress,
        class_names=run.config.class_names,
        **drawn,
    )
    values.update(counted)
    if counted:
        notes.append(STACKED_NOTE)
    result = _result(run, step, checkpoint, ema, reference, values, started, **drawn)
    result.update(extractor=_describe(reference.extractor), notes=notes)
    if write:
        write_eval_file(result)
    return result


def _result(run, step, checkpoint, ema, reference, values, started, *, n, seed, truncation) -> dict:
    """eval.json's fields every evaluation has."""
    return {
        "run": str(run.path),
        "step": step,
        "checkpoint": str(checkpoint) if checkpoint else "newest",
        "ema": ema and run.has_ema,
        "dataset": reference.dataset,
        "n_fake": n,
        "n_real": reference.n_real,
        "seed": seed,
        "truncation": truncation.record(),  # None, or {"psi", "mode"} (eval_file_name)
        "extractor": {},
        "metrics": values,
        "notes": [],
        "seconds": round(time.perf_counter() - started, 2),
    }


def eval_file_name(truncation: dict | None) -> str:
    """eval.json for the generator as it is; eval_truncation_<mode>_<psi>.json for truncated
    noise, so that a truncated evaluation (better precision, worse recall) neither replaces nor
    is read as the run's own."""
    if truncation is None:
        return EVAL_FILE
    return f"eval_truncation_{truncation['mode']}_{float(truncation['psi'])!r}.json"


def write_eval_file(result: dict) -> Path:
    """RUN/eval.json, the last evaluation of a run (`result["run"]` names the run folder), or
    the file of its truncation (eval_file_name)."""
    path = Path(result["run"]) / eval_file_name(result.get("truncation"))
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path


def _describe(extractor: FeatureExtractor, reads: str = "") -> dict:
    name = f"{extractor.name} ({reads})" if reads else extractor.name
    info = {"name": name, "identity": extractor.identity()[:16]}
    spec = getattr(extractor, "spec", None)
    if spec is not None:
        info.update(trained_on=spec.trained_on, test_accuracy=spec.test_accuracy)
    if hasattr(extractor, "resize"):
        info["resize"] = extractor.resize
    return info


def format_table(result: dict) -> str:
    """The evaluation as a plain-text table with a header saying what was compared."""
    if result.get("task") == "translation":
        return format_translation_table(result)
    values = result["metrics"]
    ex = result["extractor"]
    lines = [
        f"{result['run']} at step {result['step']} ({'EMA' if result['ema'] else 'raw'} generator)",
        f"{result['n_fake']} samples vs {result['n_real']} real "
        f"{'points' if ex['name'] == 'nearest mode' else 'images'} of {result['dataset']}; "
        f"features: {ex['name']}"
        + (f" (test accuracy {ex['test_accuracy']:.1%})" if "test_accuracy" in ex else ""),
        "",
    ]
    if result.get("truncation"):
        lines.insert(2, f"noise truncated: {Truncation(**result['truncation'])}")
    rows = []
    for metric in list_metrics():
        if metric.name in values:
            rows.append((metric.label, metric.format(values), _(metric.description)))
    width = max((len(r[0]) for r in rows), default=0)
    value_width = max((len(r[1]) for r in rows), default=0)
    lines += [f"  {a:<{width}}  {b:>{value_width}}  {c}" for a, b, c in rows]
    if "class_accuracy_per_class" in values:
        shares = ", ".join(f"{v:.0%}" for v in values["class_accuracy_per_class"])
        lines.append(f"  accuracy by class asked for: {shares}")
    lines += ["", *result["notes"]]
    return "\n".join(lines)

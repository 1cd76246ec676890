"""The metrics that ship with ganforge, declared in the catalogue (catalog.py) in the order the
tables list them. The maths lives in the modules each one calls."""

from __future__ import annotations

import numpy as np
import torch

from ganforge.i18n import N_
from ganforge.metrics.catalog import HIGHER, LOWER, Metric, MetricInputs, register_group
from ganforge.metrics.class_scores import inception_score_of_logits, mode_coverage_of_logits
from ganforge.metrics.conditional import class_accuracy, intra_class_fid
from ganforge.metrics.frechet import frechet_distance
from ganforge.metrics.kernel_distance import kid_of_features
from ganforge.metrics.mixture import mixture_scores
from ganforge.metrics.paired import paired_scores
from ganforge.metrics.prdc import density_coverage_of_features, precision_recall_of_features
from ganforge.metrics.stacked_modes import stacked_mode_scores

PAIRS_BATCH = 64  # pairs scored at a time; the per-image values do not depend on it


@register_group(
    "fid",
    needs=("features",),
    description="Fréchet distance of Gaussians fitted to real and fake features (Heusel et al. "
    "2017)",
    metrics=(Metric("fid", "FID", LOWER, N_("lower is better"), digits=3),),
)
def _fid(inputs: MetricInputs) -> dict:
    return {"fid": frechet_distance(inputs.real.features, inputs.fake.features)}


@register_group(
    "kid",
    needs=("features",),
    description="squared MMD, cubic kernel, unbiased, 100 subsets (Bińkowski et al. 2018)",
    metrics=(
        Metric(
            "kid", "KID", LOWER, N_("lower is better; unbiased"), digits=5, plus_minus="kid_std"
        ),
    ),
)
def _kid(inputs: MetricInputs) -> dict:
    result = kid_of_features(inputs.real.features, inputs.fake.features, seed=inputs.seed)
    return {"kid": result.mean, "kid_std": result.std}


@register_group(
    "pr",
    needs=("features",),
    description="precision and recall, k = 3 (Kynkäänniemi et al. 2019)",
    metrics=(
        Metric("precision", "precision", HIGHER, N_("share of samples that look real")),
        Metric("recall", "recall", HIGHER, N_("share of the real variety covered")),
    ),
)
def _precision_recall(inputs: MetricInputs) -> dict:
    pr = precision_recall_of_features(inputs.real.features, inputs.fake.features)
    return {"precision": pr.precision, "recall": pr.recall}


@register_group(
    "dc",
    needs=("features",),
    description="density and coverage, k = 5 (Naeem et al. 2020)",
    metrics=(
        Metric(
            "density",
            "density",
            HIGHER,
            N_("~1 when samples sit where real data is dense"),
            highlight=False,  # ~1 is ideal, not "more": compare bolds no run
        ),
        Metric("coverage", "coverage", HIGHER, N_("share of real neighbourhoods with a sample")),
    ),
)
def _density_coverage(inputs: MetricInputs) -> dict:
    dc = density_coverage_of_features(inputs.real.features, inputs.fake.features)
    return {"density": dc.density, "coverage": dc.coverage}


@register_group(
    "modes",
    needs=("logits",),
    description="classes found, class histogram, KL to uniform, share classified with "
    "p >= 0.9: the mode-collapse figure",
    metrics=(
        Metric(
            "classes_found",
            "classes found",
            HIGHER,
            N_("mode coverage"),
            trackable=False,
            out_of="num_classes",
        ),
        Metric("kl_to_uniform", "class KL to uniform", LOWER, N_("0 = balanced classes")),
        Metric(
            "confident", "confident", None, N_("share classified with p >= 0.9"), trackable=False
        ),
    ),
)
def _modes(inputs: MetricInputs) -> dict:
    modes = mode_coverage_of_logits(inputs.fake.logits)
    return {
        "classes_found": modes.classes_found,
        "num_classes": modes.num_classes,
        "kl_to_uniform": modes.kl_to_uniform,
        "confident": modes.confident,
        "class_histogram": list(modes.histogram),
    }


@register_group(
    "is",
    needs=("logits",),
    description="Inception Score over 10 splits, seeded shuffle first (Salimans et al. 2016)",
    metrics=(Metric("is", "IS", HIGHER, N_("higher is better"), digits=3, plus_minus="is_std"),),
)
def _inception_score(inputs: MetricInputs) -> dict:
    score = inception_score_of_logits(inputs.fake.logits)
    return {"is": score.mean, "is_std": score.std}


@register_group(
    "cond",
    needs=("features", "classes"),
    description="class accuracy and intra-class FID of a class-conditional run",
    metrics=(
        Metric(
            "class_accuracy",
            "class accuracy",
            HIGHER,
            N_("samples recognised as the class asked for"),
            needs=frozenset({"logits"}),
        ),
        Metric(
            "worst_class_accuracy",
            "worst class",
            HIGHER,
            N_("the lowest per-class accuracy"),
            needs=frozenset({"logits"}),
            trackable=False,
        ),
        Metric(
            "intra_fid",
            "intra-class FID",
            LOWER,
            N_("mean FID within each class; lower is better"),
            digits=3,
        ),
    ),
)
def _conditional(inputs: MetricInputs) -> dict:
    """Intra-class FID over the classes the real data has, and, when the extractor classifies
    the same class names, the accuracy of the samples asked for as each class."""
    real_classes = sorted(c for c in set(inputs.real_labels.tolist()) if c >= 0)
    mean, per_class = intra_class_fid(
        inputs.real.features,
        inputs.real_labels,
        inputs.fake.features,
        inputs.fake_labels,
        real_classes,
    )
    out: dict = {"intra_fid": mean, "intra_fid_per_class": list(per_class)}
    names = list(inputs.classifier_names)
    if inputs.fake.logits is not None and all(name in names for name in inputs.class_names):
        # the extractor's index of each asked class, by name
        asked_as = np.array([names.index(inputs.class_names[a]) for a in inputs.fake_labels])
        accuracy = class_accuracy(inputs.fake.logits, asked_as, len(names))
        per_class = [accuracy.per_class[names.index(name)] for name in inputs.class_names]
        out.update(
            class_accuracy=accuracy.overall,
            worst_class_accuracy=min(per_class),
            class_accuracy_per_class=per_class,
        )
    return out


@register_group(
    "translation",
    needs=("pairs",),
    description="L1, PSNR and SSIM of a translator's outputs against held-out targets, on "
    "images in [0, 1], the mean over pairs",
    metrics=(
        Metric("l1", "L1", LOWER, N_("mean |output - target|, lower is better")),
        Metric("psnr", "PSNR (dB)", HIGHER, N_("higher is better")),
        Metric("ssim", "SSIM", HIGHER, N_("1 = structurally identical")),
    ),
    option=False,
)
def _translation(inputs: MetricInputs) -> dict:
    per_image: dict[str, list[torch.Tensor]] = {}
    outputs, targets = inputs.outputs, inputs.targets
    for output, target in zip(outputs.split(PAIRS_BATCH), targets.split(PAIRS_BATCH)):
        for key, values in paired_scores(output.float() / 255, target.float() / 255).items():
            per_image.setdefault(key, []).append(values)
    return {key: round(float(torch.cat(v).mean()), 6) for key, v in per_image.items()}


@register_group(
    "mixture",
    needs=("points",),
    description="modes of a Gaussian mixture (ring8, grid25) by PacGAN's Table 1 protocol: a "
    "sample within 3 std of its nearest mode is high quality; a mode holding at least 1/5 of "
    "its fair share of the samples is captured",
    metrics=(
        Metric(
            "modes_captured",
            "modes captured",
            HIGHER,
            N_("modes holding >= 1/5 of their fair share"),
            out_of="num_modes",
        ),
        Metric(
            "high_quality", "high quality", HIGHER, N_("share of samples within 3 std of a mode")
        ),
        Metric("reverse_kl", "reverse KL", LOWER, N_("KL(samples' modes || uniform), nats")),
    ),
)
def _mixture(inputs: MetricInputs) -> dict:
    scores = mixture_scores(inputs.points, inputs.modes, inputs.mode_std)
    return {
        "modes_captured": scores.modes_captured,
        "num_modes": scores.num_modes,
        "high_quality": round(scores.high_quality, 6),
        "reverse_kl": round(scores.reverse_kl, 6),
        "mode_histogram": list(scores.histogram),
    }


@register_group(
    "stacked",
    needs=("stacked",),
    description="modes of stacked MNIST (1,000 digit triples) by PacGAN's Table 2 protocol: "
    "each channel read by the digit classifier; a mode holding at least one sample is found",
    metrics=(
        Metric(
            "modes_found",
            "modes found",
            HIGHER,
            N_("digit triples with at least one sample"),
            out_of="num_modes",
        ),
        Metric("mode_kl", "mode KL", LOWER, N_("KL(samples' modes || uniform), nats")),
    ),
)
def _stacked(inputs: MetricInputs) -> dict:
    scores = stacked_mode_scores(inputs.channel_digits)
    return {
        "modes_found": scores.modes_found,
        "num_modes": scores.num_modes,
        "mode_kl": round(scores.mode_kl, 6),
        "mode_histogram": list(scores.histogram),
    }

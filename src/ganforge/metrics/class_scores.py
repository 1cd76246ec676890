"""Scores from a classifier's predictions on samples: the Inception Score and mode coverage.

Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), from class logits.

High when each sample is classified confidently (sharp p(y|x)) and the classes are varied
(flat p(y)); at most the number of classes. With ganforge's domain classifiers it is the same
formula on their classes (10 digits), so the scale differs from Inception's 1,008 classes.

Mode coverage: which classes a classifier finds among the samples — the mode-collapse figure.

A healthy generator of a balanced dataset hits every class about equally often; a collapsed
one keeps drawing the same few. Reported: the classes found (holding at least a fifth of their
fair share 1/C of the samples), the class histogram, its KL divergence to uniform (0 = perfectly
balanced; log C = a single class) and the share of confident predictions (top probability >=
0.9), which tells recognisable samples from ink the classifier merely has to label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.frechet import as_features

FAIR_SHARE_FRACTION = 0.2
CONFIDENT = 0.9


@dataclass(frozen=True)
class ModeCoverage:
    classes_found: int
    num_classes: int
    histogram: tuple[float, ...]
    kl_to_uniform: float
    confident: float


def class_histogram(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(predictions, minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1)


def kl_to_uniform(histogram: np.ndarray) -> float:
    """KL(histogram || uniform) in nats, with 0 log 0 = 0."""
    p = histogram[histogram > 0]
    return float(np.sum(p * np.log(p * len(histogram))))


def mode_coverage_of_logits(logits) -> ModeCoverage:
    """Mode coverage from classifier logits (N, C) of the samples."""
    probs = torch.softmax(torch.from_numpy(as_features(logits, "logits")), dim=1).numpy()
    num_classes = probs.shape[1]
    histogram = class_histogram(probs.argmax(axis=1), num_classes)
    found = int((histogram >= FAIR_SHARE_FRACTION / num_classes).sum())
    return ModeCoverage(
        classes_found=found,
        num_classes=num_classes,
        histogram=tuple(float(h) for h in histogram),
        kl_to_uniform=kl_to_uniform(histogram),
        confident=float((probs.max(axis=1) >= CONFIDENT).mean()),
    )


@dataclass(frozen=True)
class InceptionScore:
    mean: float
    std: float
    splits: int


def inception_score_of_logits(
    logits, splits: int = 10, shuffle_seed: int | None = 0
) -> InceptionScore:
    """IS from logits (N, C): mean and std over `splits` equal parts of the samples.

    The rows are shuffled (seeded) first, as torch-fidelity does: parts of a set sorted by
    class would each hold one class and score ~1. `shuffle_seed=None` keeps the order.
    """
    log_p = torch.log_softmax(torch.from_numpy(as_features(logits, "logits")), dim=1)
    if shuffle_seed is not None:
        order = torch.randperm(len(log_p), generator=torch.Generator().manual_seed(shuffle_seed))
        log_p = log_p[order]
    if splits < 1:
        raise GanforgeError(f"inception score: splits must be at least 1, got {splits}")
    if len(log_p) < splits:
        raise GanforgeError(f"inception score: {len(log_p)} samples cannot make {splits} splits")
    scores = []
    # exactly `splits` parts, cut at N*i//splits as the original IS code (torch.chunk would make
    # parts of ceil(N / splits) and so fewer of them: 6 parts for N=11, splits=10)
    n = len(log_p)
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = torch.logsumexp(part, dim=0) - np.log(len(part))
        kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return InceptionScore(float(np.mean(scores)), float(np.std(scores)), splits)

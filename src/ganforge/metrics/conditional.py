"""Does the label control the output? Scores for class-conditional generators.

- class accuracy: the share of samples asked for as class c that a classifier trained on the
  real data recognises as c, overall and per class (the worst class says the most);
- intra-class FID (Miyato & Koyama 2018): the Fréchet distance between real and generated
  features within each class, averaged over classes — a model that draws every class well but
  mixes them up scores badly here, while the overall FID would not notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.metrics.frechet import as_features, frechet_distance


@dataclass(frozen=True)
class ClassAccuracy:
    overall: float
    per_class: tuple[float, ...]  # accuracy of the samples asked for as each class

    @property
    def worst(self) -> float:
        return min(self.per_class)


def class_accuracy(
    logits: np.ndarray, asked: np.ndarray, num_classes: int | None = None
) -> ClassAccuracy:
    """Accuracy of argmax(`logits`) against the `asked` labels, overall and per asked class."""
    logits = np.asarray(logits)
    asked = np.asarray(asked, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(asked):
        raise GanforgeError(
            f"class_accuracy: logits {logits.shape} and labels {asked.shape} do not match"
        )
    classes = num_classes or int(asked.max()) + 1
    correct = logits.argmax(axis=1) == asked
    per_class = tuple(
        float(correct[asked == c].mean()) if (asked == c).any() else float("nan")
        for c in range(classes)
    )
    return ClassAccuracy(float(correct.mean()), per_class)


def intra_class_fid(
    real_features: np.ndarray,
    real_labels: np.ndarray,
    fake_features: np.ndarray,
    fake_labels: np.ndarray,
    classes: Sequence[int] | None = None,
) -> tuple[float, tuple[float, ...]]:
    """The mean over `classes` (default: all real labels) of FID within each class, and the
    per-class values. Each class needs at least two real and two fake samples."""
    real = as_features(real_features, "real features")
    fake = as_features(fake_features, "fake features")
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    chosen = sorted(set(real_labels.tolist())) if classes is None else list(classes)
    values = []
    for c in chosen:
        real_c, fake_c = real[real_labels == c], fake[fake_labels == c]
        if len(real_c) < 2 or len(fake_c) < 2:
            raise GanforgeError(
                f"intra-class FID: class {c} has {len(real_c)} real and {len(fake_c)} generated "
                "samples; each needs at least 2"
            )
        values.append(frechet_distance(real_c, fake_c))
    return float(np.mean(values)), tuple(values)

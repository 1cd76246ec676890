"""How well an InfoGAN's categorical code took the data's classes, read by a classifier of
the domain (the packaged `mnist` one for digits): for each value of the code, samples with
random noise and continuous codes are classified, each code value is matched to one class
(the one-to-one matching that agrees with the most samples, Hungarian), and the alignment is
the share of samples classified as their value's class — the unsupervised-clustering
accuracy Chen et al. 2016 report (5% error on MNIST).

One-to-one matters: an untrained G whose every sample the classifier calls "1" would score 68%
if each value were simply given its commonest class; matched, it scores 1/K.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ganforge.data import to_uint8
from ganforge.modules import device_of, eval_mode


def matched_accuracy(classes_by_value: np.ndarray, num_classes: int) -> float:
    """`classes_by_value` (values, samples) of predicted classes -> the share of samples whose
    class is the one their value is matched to, over the best one-to-one matching."""
    counts = np.zeros((len(classes_by_value), num_classes), dtype=np.int64)
    for value, row in enumerate(classes_by_value):
        counts[value] = np.bincount(row, minlength=num_classes)
    values, classes = linear_sum_assignment(counts, maximize=True)
    return counts[values, classes].sum() / classes_by_value.size


@torch.no_grad()
def categorical_alignment(family, network, extractor, per_value: int = 200, seed: int = 0):
    """(alignment, predicted classes (values, per_value)) for an InfoGAN family's sampler
    `network`, read by `extractor` (a FeatureExtractor with a class head)."""
    generator = torch.Generator().manual_seed(seed)
    device = device_of(network)
    rows = []
    for value in range(family.categories):
        noise = torch.randn(per_value, family.noise_dim, generator=generator)
        continuous = torch.rand(per_value, family.continuous, generator=generator) * 2 - 1
        category = torch.full((per_value,), value, dtype=torch.long)
        with eval_mode(network):
            images = family.sample(network, family.latent(noise, category, continuous).to(device))
        _, logits = extractor(to_uint8(images.cpu()).to(extractor.device))
        rows.append(logits.argmax(1).cpu().numpy())
    predicted = np.stack(rows)
    return matched_accuracy(predicted, extractor.num_classes), predicted

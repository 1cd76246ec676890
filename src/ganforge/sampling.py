"""Turning noise into uint8 images: seeded, batched, in eval mode, independent of training RNG.

The family says what its sampler takes (`family.sample`, `family.kind`): noise alone, noise and
class labels, or source images (a translator); these helpers draw the noise and the labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ganforge.bounds import check_seed
from ganforge.data import to_uint8
from ganforge.errors import GanforgeError
from ganforge.modules import device_of, eval_mode

if TYPE_CHECKING:  # the families call these helpers: no import of ganforge.models at run time
    from ganforge.models.family import ModelFamily


CLASS_GRID_BATCH = 256  # images per pass of a class grid


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """0, 1, ..., C-1, 0, 1, ...: every class equally often (within one) in any prefix."""
    return torch.arange(n) % num_classes


def check_labels(family: ModelFamily, labels: torch.Tensor) -> torch.Tensor:
    """`labels` as int64, or a one-line error naming --class when one is out of range."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if not family.kind.class_conditional:
        raise GanforgeError("--class: this model is not class-conditional")
    bad = labels[(labels < 0) | (labels >= family.num_classes)]
    if bad.numel():
        raise GanforgeError(
            f"--class: {int(bad[0])} is not a class of this model (0..{family.num_classes - 1})"
        )
    return labels


def sample_batches(
    family: ModelFamily,
    network: nn.Module,
    n: int,
    seed: int,
    batch_size: int = 256,
    labels: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """`n` samples as uint8 NCHW CPU batches, streamed: for sets too large to hold (metrics).
    The same seed gives the same images as `generate`. A class-conditional family draws
    `labels` (default: balanced_labels)."""
    if not family.kind.draws_from_noise:
        raise GanforgeError(
            "this model translates images (it has no noise to sample from): "
            "use `ganforge translate RUN INPUT`"
        )
    check_seed("--seed", seed)
    device = device_of(network)
    noise = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    if family.kind.class_conditional:
        labels = balanced_labels(n, family.num_classes) if labels is None else labels
        conditions = check_labels(family, labels).split(batch_size)
    else:
        conditions = [None] * len(noise.split(batch_size))
    with eval_mode(network):
        for z, condition in zip(noise.split(batch_size), conditions):
            if condition is not None:
                condition = condition.to(device)
            yield to_uint8(family.sample(network, z.to(device), condition)).cpu()


def generate(
    family: ModelFamily,
    network: nn.Module,
    n: int,
    seed: int,
    batch_size: int = 256,
    labels: torch.Tensor | None = None,
) -> np.ndarray:
    """`n` samples as uint8 (N, H, W, C) — or, from a generator of points, float32 (N, D).
    The noise comes from its own generator seeded by `seed`, so the same seed gives the same
    images, and the global RNG is left untouched."""
    if family.kind.data == "points":
        return sample_points(family, network, n, seed, batch_size)
    chunks = list(sample_batches(family, network, n, seed, batch_size, labels))
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()


def sample_points(
    family: ModelFamily, network: nn.Module, n: int, seed: int, batch_size: int = 4096
) -> np.ndarray:
    """`n` points, float32 (N, D), of a generator of points (the mode-collapse lab), seeded
    as `generate` is."""
    check_seed("--seed", seed)
    device = device_of(network)
    noise = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    with eval_mode(network):
        chunks = [family.sample(network, z.to(device)).cpu() for z in noise.split(batch_size)]
    return torch.cat(chunks).numpy()


def class_rows(
    family: ModelFamily, network: nn.Module, per_class: int, seed: int
) -> tuple[np.ndarray, torch.Tensor]:
    """One row per class, `per_class` columns; column j uses the same noise in every row, so
    the grid shows what the label changes and what the noise keeps. Returns images and labels."""
    check_seed("--seed", seed)
    classes = family.num_classes
    labels = torch.arange(classes).repeat_interleave(per_class)
    noise = family.sample_latent(per_class, generator=torch.Generator().manual_seed(seed))
    device = device_of(network)
    chunks = []
    with eval_mode(network):  # a large grid in batches (a small one in one pass, as always)
        codes = noise.repeat(classes, 1)
        for z, part in zip(codes.split(CLASS_GRID_BATCH), labels.split(CLASS_GRID_BATCH)):
            images = family.sample(network, z.to(device), part.to(device))
            chunks.append(to_uint8(images).cpu())
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy(), labels


def translation_triplets(
    family: ModelFamily, network: nn.Module, examples: dict[str, torch.Tensor]
) -> np.ndarray:
    """Source, output and target of each example pair, interleaved: (3N, H, W, C) uint8."""
    with eval_mode(network):
        sources = examples["sources"].to(device_of(network))
        outputs = family.sample(network, None, sources)
    rows = torch.stack([sources.cpu(), outputs.cpu(), examples["images"].cpu()], dim=1)
    images = to_uint8(rows.flatten(0, 1))
    return images.permute(0, 2, 3, 1).numpy()

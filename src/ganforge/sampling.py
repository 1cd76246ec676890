"""Turning noise into uint8 images: seeded, batched, in eval mode, independent of training RNG.

A family's `condition` (models.family.CONDITIONS) says what its sampler takes: noise alone,
noise and class labels, or source images (a translator). `sampler_output` is the one place that
calls a sampler, so every caller (grids, metrics, the doctor, the CLI) handles all three.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ganforge.bounds import check_seed
from ganforge.data import to_uint8
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily


CLASS_GRID_BATCH = 256  # images per pass of a class grid


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """0, 1, ..., C-1, 0, 1, ...: every class equally often (within one) in any prefix."""
    return torch.arange(n) % num_classes


def sampler_output(
    family: ModelFamily,
    network: nn.Module,
    z: torch.Tensor,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """`network`'s images (float [-1, 1]) for noise `z` and, by the family's condition, class
    labels (N,) or source images (N, C, H, W) in `condition` (on the network's device)."""
    if family.condition == "none":
        return network(z)
    if condition is None:
        raise GanforgeError(f"a {family.condition}-conditional model needs its condition")
    if family.condition == "class":
        return network(z, condition)
    return network(condition)


def check_labels(family: ModelFamily, labels: torch.Tensor) -> torch.Tensor:
    """`labels` as int64, or a one-line error naming --class when one is out of range."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if family.condition != "class":
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
    if family.condition == "image":
        raise GanforgeError(
            "this model translates images (it has no noise to sample from): "
            "use `ganforge translate RUN INPUT`"
        )
    check_seed("--seed", seed)
    device = next(network.parameters()).device
    noise = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    if family.condition == "class":
        labels = balanced_labels(n, family.num_classes) if labels is None else labels
        conditions = check_labels(family, labels).split(batch_size)
    else:
        conditions = [None] * len(noise.split(batch_size))
    was_training = network.training
    network.eval()
    try:
        for z, condition in zip(noise.split(batch_size), conditions):
            if condition is not None:
                condition = condition.to(device)
            with torch.no_grad():
                yield to_uint8(sampler_output(family, network, z.to(device), condition)).cpu()
    finally:
        network.train(was_training)


def generate(
    family: ModelFamily,
    network: nn.Module,
    n: int,
    seed: int,
    batch_size: int = 256,
    labels: torch.Tensor | None = None,
) -> np.ndarray:
    """`n` samples as uint8 (N, H, W, C). The noise comes from its own generator seeded by
    `seed`, so the same seed gives the same images, and the global RNG is left untouched."""
    chunks = list(sample_batches(family, network, n, seed, batch_size, labels))
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()


def class_rows(
    family: ModelFamily, network: nn.Module, per_class: int, seed: int
) -> tuple[np.ndarray, torch.Tensor]:
    """One row per class, `per_class` columns; column j uses the same noise in every row, so
    the grid shows what the label changes and what the noise keeps. Returns images and labels."""
    check_seed("--seed", seed)
    classes = family.num_classes
    labels = torch.arange(classes).repeat_interleave(per_class)
    noise = family.sample_latent(per_class, generator=torch.Generator().manual_seed(seed))
    device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    chunks = []
    try:
        with torch.no_grad():  # a large grid in batches (a small one in one pass, as always)
            codes = noise.repeat(classes, 1)
            for z, part in zip(codes.split(CLASS_GRID_BATCH), labels.split(CLASS_GRID_BATCH)):
                images = sampler_output(family, network, z.to(device), part.to(device))
                chunks.append(to_uint8(images).cpu())
    finally:
        network.train(was_training)
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy(), labels


def preview_grid(
    family: ModelFamily,
    network: nn.Module,
    n: int,
    seed: int,
    examples: dict[str, torch.Tensor] | None = None,
) -> tuple[np.ndarray, int | None]:
    """The progress grid of about `n` images and its column count (None: square): fixed noise;
    for a class-conditional model one row per class; for a translator, rows of source | output
    | target for the fixed `examples` (a Batch with "sources" and "images")."""
    if family.condition == "class":
        per_class = max(1, n // family.num_classes)
        return class_rows(family, network, per_class, seed)[0], per_class
    if family.condition == "image":
        if examples is None:
            raise GanforgeError("a translator's preview needs example pairs")
        return translation_triplets(family, network, examples), 3
    return generate(family, network, n, seed), None


def translation_triplets(
    family: ModelFamily, network: nn.Module, examples: dict[str, torch.Tensor]
) -> np.ndarray:
    """Source, output and target of each example pair, interleaved: (3N, H, W, C) uint8."""
    device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            sources = examples["sources"].to(device)
            outputs = sampler_output(family, network, None, sources)
    finally:
        network.train(was_training)
    rows = torch.stack([sources.cpu(), outputs.cpu(), examples["images"].cpu()], dim=1)
    images = to_uint8(rows.flatten(0, 1))
    return images.permute(0, 2, 3, 1).numpy()

"""Turning noise into uint8 images: seeded, batched, in eval mode, independent of training RNG.

The family says what its sampler takes (`family.sample`, `family.kind`): noise alone, noise and
class labels, or source images (a translator); these helpers draw the noise and the labels,
and the truncation trick (`Truncation`, `truncate_latent`) that every tool applies to the noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ganforge.bounds import check_seed
from ganforge.data import to_uint8
from ganforge.errors import GanforgeError
from ganforge.modules import device_of, eval_mode

if TYPE_CHECKING:  # the families call these helpers: no import of ganforge.models at run time
    from ganforge.models.family import Kind, ModelFamily


CLASS_GRID_BATCH = 256  # images per pass of a class grid
TRUNCATION_MODES = ("scale", "resample")
# Below this threshold fewer than 1 in 125 draws of N(0, 1) land inside, so resampling would
# take hundreds of rounds, for samples that are all the average image anyway.
MIN_RESAMPLE_THRESHOLD = 0.01


# ---- the truncation trick ----------------------------------------------------------------------


def check_truncation(psi: float, mode: str) -> float:
    """`psi` as a float, or a one-line error naming --truncation (or --truncation-mode)."""
    if mode not in TRUNCATION_MODES:
        raise GanforgeError(
            f"--truncation-mode: '{mode}' is not one of {', '.join(TRUNCATION_MODES)}"
        )
    try:
        psi = float(psi)
    except (TypeError, ValueError):
        raise GanforgeError(f"--truncation: '{psi}' is not a number") from None
    if not math.isfinite(psi) or psi <= 0:
        raise GanforgeError(f"--truncation: must be a finite number above 0, got {psi}")
    if mode == "scale" and psi > 1:
        raise GanforgeError(
            f"--truncation: scales z by PSI in (0, 1] (1: off), got {psi}; for a threshold "
            "on |z| add --truncation-mode resample"
        )
    if mode == "resample" and psi < MIN_RESAMPLE_THRESHOLD:
        raise GanforgeError(
            f"--truncation: a resampling threshold must be at least {MIN_RESAMPLE_THRESHOLD} "
            f"(got {psi}): below it almost every draw is rejected; use --truncation-mode scale"
        )
    return psi


def truncate_latent(
    z: torch.Tensor, psi: float, mode: str = "scale", generator: torch.Generator | None = None
) -> torch.Tensor:
    """The truncation trick on Gaussian noise z ~ N(0, I): samples nearer the prior's mean look
    better and vary less. `scale` (StyleGAN's psi, Karras et al. 2019: towards the mean, which
    is 0 for z): psi * z, psi in (0, 1]. `resample` (BigGAN, Brock et al. 2019): every component
    with |z_i| > psi is drawn again from N(0, 1), from `generator` (the one z came from, so a
    seed keeps its codes), until it falls inside; the others are kept as they are."""
    psi = check_truncation(psi, mode)
    if mode == "scale":
        return z * psi
    flat = z.flatten().clone()
    outside = torch.nonzero(flat.abs() > psi).flatten()
    while outside.numel():  # only the rejected components are drawn again, in index order
        fresh = torch.randn(outside.numel(), generator=generator, dtype=z.dtype)
        flat[outside] = fresh.to(z.device)
        outside = outside[flat[outside].abs() > psi]
    return flat.view_as(z)


@dataclass(frozen=True)
class Truncation:
    """A truncation of the noise (`truncate_latent`), checked when made: `psi` in (0, 1] for
    `mode` "scale" (the default; 1 is off), any threshold >= MIN_RESAMPLE_THRESHOLD for
    "resample". What `--truncation PSI [--truncation-mode M]` builds, and what the outputs
    record, so that truncated samples and scores are never taken for plain ones."""

    psi: float = 1.0
    mode: str = "scale"

    def __post_init__(self) -> None:
        object.__setattr__(self, "psi", check_truncation(self.psi, self.mode))

    @property
    def active(self) -> bool:
        """Whether it changes the noise (scale by 1 does not: the codes stay bit for bit)."""
        return not (self.mode == "scale" and self.psi == 1.0)

    def apply(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return truncate_latent(z, self.psi, self.mode, generator) if self.active else z

    def record(self) -> dict | None:
        """What an output file records: {"psi", "mode"}, or None for no truncation."""
        return {"psi": self.psi, "mode": self.mode} if self.active else None

    def __str__(self) -> str:
        return f"truncation psi {self.psi:g} ({self.mode})" if self.active else "no truncation"


NO_TRUNCATION = Truncation()


def as_truncation(value: float | Truncation | None) -> Truncation:
    """The Python API's `truncation=`: None (off), a number (psi of the scale mode, as StyleGAN's
    truncation_psi), or a Truncation (for the resample mode)."""
    if value is None:
        return NO_TRUNCATION
    return value if isinstance(value, Truncation) else Truncation(value)


def check_truncatable(kind: Kind, truncation: Truncation) -> None:
    """Truncation assumes z ~ N(0, I), which every family that draws from noise draws (a VAE's
    prior included; in a z that also holds codes, InfoGAN's, the noise part: the family's
    `gaussian_part`); a translator draws no noise."""
    if truncation.active and not kind.draws_from_noise:
        raise GanforgeError("--truncation: this model translates images; it draws no noise")


def draw_latent(
    family: ModelFamily, n: int, seed: int, truncation: Truncation = NO_TRUNCATION
) -> torch.Tensor:
    """The noise of `n` samples of `seed`, truncated: the codes every tool decodes. Redraws come
    from the same seeded generator, so a seed gives the same codes; the global RNG is untouched."""
    check_truncatable(family.kind, truncation)
    generator = torch.Generator().manual_seed(seed)
    z = family.sample_latent(n, generator=generator)
    if not truncation.active:
        return z
    part = family.gaussian_part
    z = z.clone()
    z[:, part] = truncation.apply(z[:, part], generator)
    return z


# ---- samples -----------------------------------------------------------------------------------


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
    truncation: Truncation = NO_TRUNCATION,
) -> Iterator[torch.Tensor]:
    """`n` samples as uint8 NCHW CPU batches, streamed: for sets too large to hold (metrics).
    The same seed gives the same images as `generate`. A class-conditional family draws
    `labels` (default: balanced_labels)."""
    check_truncatable(family.kind, truncation)
    if not family.kind.draws_from_noise:
        raise GanforgeError(
            "this model translates images (it has no noise to sample from): "
            "use `ganforge translate RUN INPUT`"
        )
    check_seed("--seed", seed)
    device = device_of(network)
    noise = draw_latent(family, n, seed, truncation)
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
    truncation: Truncation = NO_TRUNCATION,
) -> np.ndarray:
    """`n` samples as uint8 (N, H, W, C) — or, from a generator of points, float32 (N, D).
    The noise comes from its own generator seeded by `seed`, so the same seed gives the same
    images, and the global RNG is left untouched."""
    if family.kind.data == "points":
        return sample_points(family, network, n, seed, batch_size, truncation)
    chunks = list(sample_batches(family, network, n, seed, batch_size, labels, truncation))
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()


def sample_points(
    family: ModelFamily,
    network: nn.Module,
    n: int,
    seed: int,
    batch_size: int = 4096,
    truncation: Truncation = NO_TRUNCATION,
) -> np.ndarray:
    """`n` points, float32 (N, D), of a generator of points (the mode-collapse lab), seeded
    as `generate` is."""
    check_seed("--seed", seed)
    device = device_of(network)
    noise = draw_latent(family, n, seed, truncation)
    with eval_mode(network):
        chunks = [family.sample(network, z.to(device)).cpu() for z in noise.split(batch_size)]
    return torch.cat(chunks).numpy()


def class_rows(
    family: ModelFamily,
    network: nn.Module,
    per_class: int,
    seed: int,
    truncation: Truncation = NO_TRUNCATION,
) -> tuple[np.ndarray, torch.Tensor]:
    """One row per class, `per_class` columns; column j uses the same noise in every row, so
    the grid shows what the label changes and what the noise keeps. Returns images and labels."""
    check_seed("--seed", seed)
    classes = family.num_classes
    labels = torch.arange(classes).repeat_interleave(per_class)
    noise = draw_latent(family, per_class, seed, truncation)
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

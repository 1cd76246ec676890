"""The closed forms the truncation tests check the tools against: the images a run's
generator makes of its noise after a known transformation (psi * z, or a resampling)."""

from __future__ import annotations

import numpy as np
import torch

from ganforge.data import to_uint8
from ganforge.sampling import truncate_latent


def closed_form_images(run, n: int, seed: int, transform) -> np.ndarray:
    """What Run.sample(n, seed) gives when its noise z (drawn from generator g seeded `seed`) is
    replaced by transform(z, g): the tools' images against which truncation is checked."""
    family = run.load()
    generator = torch.Generator().manual_seed(seed)
    z = transform(family.sample_latent(n, generator=generator), generator)
    with torch.no_grad():
        images = family.sample(run.generator(), z)
    return to_uint8(images).permute(0, 2, 3, 1).numpy()


def scaled(psi: float):
    return lambda z, _: psi * z


def resampled(psi: float):
    return lambda z, generator: truncate_latent(z, psi, "resample", generator)


def closed_form_class_rows(run, per_class: int, seed: int, psi: float) -> np.ndarray:
    """Run.class_grid(per_class, seed) of a class-conditional run, its noise scaled by psi."""
    family = run.load()
    z = family.sample_latent(per_class, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(family.num_classes).repeat_interleave(per_class)
    with torch.no_grad():
        images = family.sample(run.generator(), (psi * z).repeat(family.num_classes, 1), labels)
    return to_uint8(images).permute(0, 2, 3, 1).numpy()

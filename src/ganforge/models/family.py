"""The seam between the training loop (and every tool) and a model: a family owns its networks,
knows the loss of each training phase, and is the one place that knows its kind — what data it
trains on, how it samples, what its progress grid shows, which network learns at which rate,
which one the EMA averages, and which of its statistics go on which curve panel. The loop owns
optimisers, steps, logging and checkpoints; the tools ask a family for a capability (`Kind`)
instead of testing its name.

Adding a model is one file that builds a family, plus one `register_model` line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    import numpy as np

    from ganforge.data import ImageDataset
    from ganforge.models.kept_fakes import KeptFakes


@dataclass(frozen=True)
class Phase:
    """One optimisation phase of an iteration.

    `network` is the network updated (the loop freezes all others), or a tuple of networks
    trained together on one loss (a VAE's encoder and decoder), each with its own optimiser;
    `repeats` names the config option giving how many times the phase runs per iteration (e.g.
    "d_steps"); a phase with `fresh_batch` draws a new real batch, otherwise it reuses the last.
    """

    name: str
    network: str | tuple[str, ...]
    repeats: str | None = None
    fresh_batch: bool = True

    @property
    def trains(self) -> tuple[str, ...]:
        """The names of the networks this phase updates."""
        return (self.network,) if isinstance(self.network, str) else tuple(self.network)


# "images": float [-1, 1] NCHW, "labels": int64 (N,) (-1: unknown); paired data adds
# "sources": the input images a translator maps to "images", float [-1, 1] NCHW.
Batch = dict[str, torch.Tensor]

# What a model's training data must bring: images alone; images with a class label each;
# (source, target) image pairs; two unpaired sets of images; points in the plane.
DATA_KINDS = ("unlabelled", "labelled", "paired", "unpaired", "points")


@dataclass(frozen=True)
class Kind:
    """What a model is, as the tools need to know it before (or without) building it.

    `data`: one of DATA_KINDS. `class_conditional`: its sampler takes class labels, G(z, y);
    `translator`: its sampler maps source images, G(x), and draws nothing from noise (no
    latent space to walk); `autoencoder`: it can encode an image and decode the code
    (`reconstruct`); `latent_codes`: its latent space has codes with a meaning of their own
    (InfoGAN), whose traversals it draws (`traversal`).
    """

    data: str = "unlabelled"
    class_conditional: bool = False
    translator: bool = False
    autoencoder: bool = False
    latent_codes: bool = False

    def __post_init__(self) -> None:
        assert self.data in DATA_KINDS, self.data

    @property
    def draws_from_noise(self) -> bool:
        """Samples come from noise (a latent space to sample, walk and evaluate)."""
        return not self.translator


UNCONDITIONAL = Kind()
CLASS_CONDITIONAL = Kind(data="labelled", class_conditional=True)
PAIRED_TRANSLATOR = Kind(data="paired", translator=True)
AUTOENCODER = Kind(autoencoder=True)
POINTS = Kind(data="points")  # samples are points (N, D), not images: the mode-collapse lab

# (title, the logged statistics drawn on it) — one panel of loss_curves.png and report.html
Panel = tuple[str, tuple[str, ...]]


class ModelFamily:
    """What every family has; a family subclasses it and fills in its own parts.

    Required of a subclass: `networks`, `phases`, `sampler`, `z_dim`, `kind`, `phase_loss`,
    `sample_latent` and `sample`. The rest has defaults that fit a noise-to-image model.
    """

    networks: nn.ModuleDict
    phases: tuple[Phase, ...]
    sampler: str  # the network that produces samples (and gets an EMA copy)
    z_dim: int
    kind: Kind = UNCONDITIONAL
    num_classes: int = 0  # the classes a class-conditional family draws (0 otherwise)
    # each network's learning-rate option (a TrainConfig field); a network not named learns
    # at --lr-d (a critic, an encoder)
    learning_rates: ClassVar[Mapping[str, str]] = {"generator": "lr_g"}
    # the family's own statistics: which go on which curve panel, which on the progress bar
    curve_panels: ClassVar[tuple[Panel, ...]] = ()
    progress_stats: ClassVar[tuple[str, ...]] = ()
    # a translator's directions (`ganforge translate --direction`): the first is its own
    directions: ClassVar[tuple[str, ...]] = ("a2b",)
    # D's fakes kept for G's phase on the same batch (--reuse-fakes: models/kept_fakes.py);
    # None: the family draws G's anew, and refuses the option
    kept_fakes: KeptFakes | None = None

    def phase_loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise in `phase`, and detached scalar statistics to log."""
        raise NotImplementedError

    def attach_optimizers(self, optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
        """Told the loop's optimisers (network name -> optimiser) once they are built, for a
        loss that looks ahead at an optimiser's step (--unroll); may do nothing."""

    def set_progress(self, step: int, total: int) -> None:
        """Told before each iteration how far the run is (`step` of `total` iterations done),
        for schedules inside the family (e.g. annealed instance noise); may do nothing."""

    def after_step(self, phase: str) -> None:
        """Told after each optimiser step of `phase`, for a constraint on the weights just
        updated (WGAN's clipping); may do nothing."""

    def training_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What the family itself keeps between steps besides its networks (a replay pool, an
        augmentation probability), as tensors and JSON for a checkpoint: an exact resume
        needs it. Most families keep nothing."""
        return {}, {}

    def load_training_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Put back what `training_state` saved (`tensors` by the names it gave them); a
        wrong value is a GanforgeError saying what is wrong with it."""

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Noise for `n` samples."""
        raise NotImplementedError

    @property
    def gaussian_part(self) -> slice:
        """The columns of `sample_latent`'s z that are N(0, I) noise, which the truncation trick
        may shrink: all of them, except in a z that also holds codes (InfoGAN's)."""
        return slice(None)

    def sample(
        self, network: nn.Module, z: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Images (float [-1, 1]) of the sampling `network` (the trained sampler or its EMA
        copy) for noise `z` and, where the kind takes one, the `condition` (class labels (N,),
        or source images NCHW), on the network's device. The one place a sampler is called."""
        raise NotImplementedError

    def encoded_codes(self, images: torch.Tensor) -> torch.Tensor | None:
        """The codes an encoder gives images (float [-1, 1] NCHW on the networks' device), where
        the family has one (a VAE: its posterior means): a projection starts from them. None: no
        encoder, the projection searches from random codes."""
        return None

    def translate(self, network: nn.Module, sources: torch.Tensor, direction: str = "a2b"):
        """A translator's outputs (float [-1, 1]) for `sources` in one of its `directions`
        (a2b: what it was trained to map; b2a: back, for a model that learns both ways)."""
        if direction != self.directions[0]:
            raise ValueError(f"{type(self).__name__} translates {self.directions[0]} only")
        return self.sample(network, None, sources)

    # ---- what the loop and the tools ask; the defaults fit a noise-to-image model ----------
    @property
    def averaged(self) -> tuple[str, ...]:
        """The networks the EMA averages (their copies are what tools sample)."""
        return (self.sampler,)

    def learning_rate_option(self, network: str) -> str:
        """The TrainConfig option giving `network`'s learning rate ("lr_g" or "lr_d")."""
        return self.learning_rates.get(network, "lr_d")

    def fixed_conditions(self, dataset: ImageDataset, picks: torch.Tensor) -> torch.Tensor | None:
        """What the sampler takes besides noise for fixed samples of the images `picks` of
        `dataset` (the doctor's diversity): class labels, source images, or nothing."""
        return None

    def fixed_examples(
        self, dataset: ImageDataset, held_out: Callable[[], ImageDataset], seed: int, n: int
    ) -> Batch | None:
        """Fixed real examples the progress grid (and `end_grids`) show, picked with `seed`
        from `dataset`, or from `held_out()` (the held-out split where the data has one); `n`
        is --n-grid. None: the grids need none."""
        return None

    def preview(
        self, network: nn.Module, n: int, seed: int, examples: Batch | None = None
    ) -> tuple[np.ndarray, int | None]:
        """The progress grid: about `n` uint8 (N, H, W, C) images of fixed noise (seed), and
        its column count (None: square)."""
        from ganforge.sampling import generate

        return generate(self, network, n, seed), None

    def end_grids(
        self, network: nn.Module, examples: Batch | None
    ) -> dict[str, tuple[np.ndarray, int | None]]:
        """Grids saved to RUN/samples/ at the end of training besides final.png (a VAE's
        reconstructions): file name -> (images, columns)."""
        return {}

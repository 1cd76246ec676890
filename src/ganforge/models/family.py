"""The seam between the training loop and a model: a family owns its networks and knows the
loss of each training phase; the loop owns optimisers, steps, logging and checkpoints.

Adding a model is one file that builds a family, plus one `register_model` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn


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

# What the sampling network takes: noise alone (G(z)); noise and class labels (G(z, labels));
# or source images alone (G(sources), a translator such as pix2pix).
CONDITIONS = ("none", "class", "image")


class ModelFamily(Protocol):
    networks: nn.ModuleDict
    phases: tuple[Phase, ...]
    sampler: str  # the network that produces samples (and gets an EMA copy)
    z_dim: int
    condition: str  # one of CONDITIONS
    num_classes: int  # the classes a "class" family draws (0 otherwise)

    def phase_loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise in `phase`, and detached scalar statistics to log."""
        ...

    def set_progress(self, step: int, total: int) -> None:
        """Told before each iteration how far the run is (`step` of `total` iterations done),
        for schedules inside the family (e.g. annealed instance noise); may do nothing."""
        ...

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Noise for `n` samples."""
        ...

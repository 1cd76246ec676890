"""The doctor's signals, measured on log steps only and kept as tensors until the logbook's
flush (one host sync per record): gradient and weight norms, and the diversity of a fixed noise
batch next to that of real images."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data import ImageDataset, ImageFolder, PointSet, to_model_range
from ganforge.metrics.mixture import mixture_scores
from ganforge.models import ModelFamily
from ganforge.modules import eval_mode

DIVERSITY_SAMPLES = 64  # fixed noise vectors (and real images) the diversity is measured on
_THUMBNAIL = 16  # images are average-pooled to at most 16x16 before the projection
_PROJECTION_DIMS = 128
_PROJECTION_SEED = 2014  # fixed: the same feature in every run


def gradient_norms(name: str, network: nn.Module, per_layer: bool = False) -> dict:
    """`grad_norm_<name>`: the L2 norm of all of `network`'s gradients (one fused kernel), and
    with `per_layer` one `grad_norm_<name>.<parameter>` per parameter tensor. Tensors, unsynced."""
    named = [(key, p.grad.detach()) for key, p in network.named_parameters() if p.grad is not None]
    if not named:
        return {f"grad_norm_{name}": torch.zeros(())}
    norms = torch._foreach_norm([grad for _, grad in named])
    found = {f"grad_norm_{name}": torch.linalg.vector_norm(torch.stack(norms))}
    if per_layer:
        found.update({f"grad_norm_{name}.{key}": norm for (key, _), norm in zip(named, norms)})
    return found


def weight_norm(network: nn.Module) -> torch.Tensor:
    """The L2 norm of all of `network`'s parameters, as an unsynced tensor."""
    params = [p.detach() for p in network.parameters()]
    if not params:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params)))


class DiversityProbe:
    """Mean pairwise distance between the images of a fixed noise batch: it falls towards 0 as
    the generator's outputs stop depending on the noise (mode collapse).

    Images are average-pooled to 16x16 thumbnails (small shifts and pixel noise count for
    little) and mapped by a fixed Gaussian random projection to 128 numbers, which keeps
    distances within a few percent (Johnson-Lindenstrauss) at a cost and scale that do not grow
    with the resolution. `real` is the same measure on as many real images, drawn once.
    """

    def __init__(
        self,
        family: ModelFamily,
        dataset: ImageDataset | ImageFolder | PointSet,
        seed: int,
        device: torch.device,
    ):
        n = min(DIVERSITY_SAMPLES, len(dataset))
        noise = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
        self.noise = noise.to(device)
        self.family = family
        picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
        real = to_model_range(dataset.images_at(picks).cpu()).to(device)
        # class labels, or a translator's fixed source images
        condition = family.fixed_conditions(dataset, picks)
        self.condition = None if condition is None else condition.to(device)
        self.projection = None  # points (N, D) are their own features
        if real.dim() == 4:
            channels, resolution = real.shape[1], real.shape[-1]
            self.size = min(_THUMBNAIL, resolution)
            projection = torch.randn(
                channels * self.size**2,
                _PROJECTION_DIMS,
                generator=torch.Generator().manual_seed(_PROJECTION_SEED),
            )
            self.projection = (projection / math.sqrt(_PROJECTION_DIMS)).to(device)
        self.real = float(self.diversity_of(real))

    def diversity_of(self, images: torch.Tensor) -> torch.Tensor:
        """Mean pairwise distance of the features of images in [-1, 1], NCHW (or of points)."""
        if self.projection is None:
            return torch.pdist(images.float().flatten(1)).mean()
        thumbnails = F.adaptive_avg_pool2d(images.float(), self.size).flatten(1)
        return torch.pdist(thumbnails @ self.projection).mean()

    @torch.no_grad()
    def diversity(self, network: nn.Module) -> torch.Tensor:
        """The measure on `network`'s images of the fixed noise, in eval mode (batch-norm
        statistics are read, not updated: the training trajectory is untouched)."""
        with eval_mode(network):
            return self.diversity_of(self.family.sample(network, self.noise, self.condition))


MODE_SAMPLES = 2500  # PacGAN's count of a run's modes reads 2,500 samples
_MODE_NOISE_SEED = 7919  # the fixed noise of the mode count, apart from the diversity's


class ModeProbe:
    """Point data with modes (ring8, grid25): the modes G's samples of a fixed noise batch
    cover, counted by PacGAN's protocol (metrics/mixture.py), for every record — cheap for a
    network of points, and what the papers' figure of collapse shows."""

    def __init__(self, family: ModelFamily, dataset: PointSet, device: torch.device):
        generator = torch.Generator().manual_seed(_MODE_NOISE_SEED)
        self.noise = family.sample_latent(MODE_SAMPLES, generator=generator).to(device)
        self.family = family
        self.modes, self.std = dataset.modes.numpy(), dataset.mode_std

    @torch.no_grad()
    def measure(self, network: nn.Module) -> dict:
        with eval_mode(network):
            points = self.family.sample(network, self.noise).float().cpu().numpy()
        try:
            scores = mixture_scores(points, self.modes, self.std)
        except ValueError:  # every sample non-finite: the NaN watch reports that
            return {}
        return {
            "modes_captured": scores.modes_captured,
            "num_modes": scores.num_modes,
            "high_quality": scores.high_quality,
            "reverse_kl": scores.reverse_kl,
        }

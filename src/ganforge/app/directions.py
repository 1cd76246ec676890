"""Interpretable directions in a generator's latent space, found without labels (GANSpace,
Härkönen et al. 2020, "GANSpace: Discovering Interpretable GAN Controls").

The recipe, as the paper applies it to BigGAN (whose noise enters through a dense layer):

1. draw many codes z_i from the generator's own latent distribution;
2. push them through the generator's first layer only, giving features y_i (flattened);
3. take the principal components V (top k) of the y_i: the ways the first layer's output
   varies most over typical codes; each sample's coordinates are x_i = V^T (y_i - mean(y));
4. map the components back to the latent space by least squares, U = argmin_U sum ||U x_i -
   (z_i - mean(z))||^2: column j of U is the move in z that moves the features along component
   j. Normalised to unit length, these are the directions the sliders move along.

For a first layer that is linear in z (every generator here: a dense layer, or a transposed
convolution on a 1x1 map), step 4 recovers the right singular vectors of its weight, ordered
by singular value: the directions in z the generator amplifies the most. A class-conditional
generator gets the one-hot label as extra input; with a fixed label that only shifts the
features, so the directions are those of the noise. A slider's unit is one standard deviation
of the codes along the direction, so -3..3 covers nearly every code the generator trained on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily
from ganforge.modules import device_of

SAMPLES = 2048  # codes for the PCA: plenty for a z_dim of up to a few hundred
SEED = 0  # directions are a property of the model; drawn from a fixed seed, they are stable


@dataclass(frozen=True)
class LatentDirections:
    """`vectors` (k, z_dim): unit directions in latent space, most important first; `scales`
    (k,): the codes' standard deviation along each; `explained` (k,): the share of the first
    layer's output variance that each principal component holds (in [0, 1])."""

    vectors: torch.Tensor
    scales: torch.Tensor
    explained: torch.Tensor

    def move(self, code: torch.Tensor, amounts: list[float]) -> torch.Tensor:
        """`code` (1, z_dim) moved by amounts[j] standard deviations along direction j."""
        if len(amounts) > len(self.vectors):
            raise GanforgeError(f"{len(amounts)} slider values for {len(self.vectors)} directions")
        step = torch.zeros_like(code[0])
        for vector, scale, amount in zip(self.vectors, self.scales, amounts):
            step += float(amount) * scale * vector
        return code + step


class _FirstLayerReached(Exception):
    """Raised from a hook to stop the forward pass once the first layer has run."""


def first_layer_features(
    family: ModelFamily, network: nn.Module, codes: torch.Tensor, label: int | None = None
) -> torch.Tensor:
    """The output of the first parameterised layer that runs on `codes` (N, z_dim), flattened
    to (N, F): the rest of the network is not run. A class-conditional network gets `label`.
    The hooks go on a private copy, so that other threads can sample from `network` meanwhile."""
    network = copy.deepcopy(network)
    captured: list[torch.Tensor] = []

    def grab(_module, _inputs, output):
        captured.append(output.detach().flatten(1))
        raise _FirstLayerReached

    leaves = [m for m in network.modules() if not list(m.children()) and list(m.parameters(False))]
    hooks = [leaf.register_forward_hook(grab) for leaf in leaves]
    device = device_of(network)
    condition = None
    if family.kind.class_conditional:
        condition = torch.full((len(codes),), 0 if label is None else label, dtype=torch.int64)
        condition = condition.to(device)
    network.eval()
    try:
        with torch.no_grad():
            family.sample(network, codes.to(device), condition)
    except _FirstLayerReached:
        pass
    finally:
        for hook in hooks:
            hook.remove()
    if not captured:
        raise GanforgeError("the generator has no layer with weights to find directions in")
    return captured[0].double().cpu()


def principal_directions(
    family: ModelFamily,
    network: nn.Module,
    k: int = 5,
    label: int | None = None,
    samples: int = SAMPLES,
    seed: int = SEED,
) -> LatentDirections:
    """The top `k` GANSpace directions of a noise-to-image generator (see the module's
    docstring), from `samples` codes drawn with `seed`."""
    if not family.kind.draws_from_noise:
        raise GanforgeError(
            "this model translates images: it has no latent space to find directions in"
        )
    codes = family.sample_latent(samples, generator=torch.Generator().manual_seed(seed))
    features = first_layer_features(family, network, codes, label)
    codes = codes.double()
    centred = features - features.mean(0)
    _, singular, components = torch.linalg.svd(centred, full_matrices=False)
    if float(singular[0]) <= 1e-9 * max(1.0, float(features.abs().max())):
        raise GanforgeError("the generator's first layer does not vary with the noise")
    k = min(k, codes.shape[1], len(singular))
    coordinates = centred @ components[:k].T  # x_i, (N, k)
    regression = torch.linalg.lstsq(coordinates, codes - codes.mean(0)).solution  # U^T, (k, z)
    norms = regression.norm(dim=1, keepdim=True).clamp_min(1e-12)
    vectors = regression / norms
    scales = (codes @ vectors.T).std(0)
    variance = singular**2
    explained = variance[:k] / variance.sum().clamp_min(1e-30)
    return LatentDirections(vectors.float(), scales.float(), explained.float())

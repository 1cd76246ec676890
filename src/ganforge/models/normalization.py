"""Discriminator options that change its layers, for any architecture: spectral normalisation
(Miyato et al. 2018) and dropping batchnorm. The builders apply them after construction, so
every discriminator gets them without knowing about them."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def spectral_normalize(network: nn.Module) -> nn.Module:
    """Divide the weight of every linear and convolutional layer of `network` by its largest
    singular value (one power iteration per training forward), in place: each layer is then
    1-Lipschitz, and D with it (for 1-Lipschitz activations)."""
    for layer in list(network.modules()):
        if isinstance(layer, _WEIGHTED):
            spectral_norm(layer)
    return network


def remove_batchnorm(network: nn.Module) -> nn.Module:
    """Replace every batchnorm of `network` by the identity, in place. A gradient penalty is per
    image, but batchnorm mixes the images of a batch (Gulrajani et al. 2017 drop it from the
    critic); SN-GAN's D has none either."""
    for parent in list(network.modules()):
        for name, child in parent.named_children():
            if isinstance(child, _BATCHNORMS):
                setattr(parent, name, nn.Identity())
    return network

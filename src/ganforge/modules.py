"""Two facts about networks that every tool needs: where a network lives, and a context that
runs it in eval mode (batch-norm statistics read, not updated; dropout off) and restores the
mode each network was in."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def device_of(network: nn.Module) -> torch.device:
    """The device of `network`'s first parameter (or buffer); the CPU for one with neither."""
    for tensor in (*network.parameters(), *network.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(*networks: nn.Module) -> Iterator[None]:
    """Every network in eval mode, and without autograd, for the block; each gets its own
    mode back afterwards, also after an error."""
    modes = [network.training for network in networks]
    for network in networks:
        network.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for network, mode in zip(networks, modes):
            network.train(mode)

"""Augmentations that keep a run reproducible and resume-exact.

Each decision is drawn from (seed, epoch) by its own generator, never from the global RNG: an
image is flipped, or not, for a whole epoch, and a resumed run flips exactly the images that an
uninterrupted run would have flipped.
"""

from __future__ import annotations

import torch

_HFLIP_SALT = 0x9E37_79B9  # keeps the flip stream apart from the batch order's (seed, epoch)


def hflip_decisions(seed: int, epoch: int, size: int) -> torch.Tensor:
    """Which of the `size` images are mirrored in `epoch`: bool (size,), half on average."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch + _HFLIP_SALT) % 2**64)
    return torch.randint(0, 2, (size,), generator=generator, dtype=torch.uint8).bool()


def hflip_(images: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right, in place, the images (N, C, H, W) where `flip` (N,) is true."""
    chosen = flip.nonzero().squeeze(1)
    if len(chosen):
        chosen = to_device(chosen, images.device)
        images[chosen] = images[chosen].flip(-1)
    return images


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`; from host memory to a GPU through pinned memory, without waiting
    for the GPU (a plain copy from pageable memory synchronises the host with the device)."""
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)

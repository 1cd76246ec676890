"""Adaptive discriminator augmentation, ADA (Karras et al. 2020): every image D sees, real or
fake, in both phases, is augmented with a probability p, and p follows how sure D is of the
reals. When D overfits a small dataset its outputs on the training images turn positive:
r = E[sign(D(x) - the decision point)] rises above the target (0.6 in the paper) and p goes
up; when D is unsure, p comes down. Because G's samples pass through the same
augmentations, each applied with p < 1, G is not taught to make augmented images (the
augmentations "do not leak" below p of about 0.8).

The augmentations are differentiable (models/diffaugment.py's, plus a mirror flip), each
applied to an image with probability p on its own. p and the signs counted since its last
adjustment are training state: they go into every checkpoint and the log (`ada_p`).
"""

from __future__ import annotations

import torch

from ganforge.errors import GanforgeError
from ganforge.models.diffaugment import color, cutout, translation

ADJUST_EVERY = 4  # D steps between adjustments of p (the paper's)


def xflip(images: torch.Tensor) -> torch.Tensor:
    return images.flip(-1)


PIPELINE = (xflip, translation, color, cutout)


def with_probability(transform, images: torch.Tensor, p: float) -> torch.Tensor:
    """`transform` applied to each image with probability `p` (one draw per image)."""
    chosen = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < p
    return torch.where(chosen, transform(images), images)


class AdaptiveAugment:
    """p, adjusted every ADJUST_EVERY D steps by sign(r - target) times the images seen since
    over `kimg` thousand images: from 0 to 1 in `kimg` thousand images at the fastest."""

    def __init__(self, target: float, kimg: float):
        self.target, self.kimg = target, kimg
        self.p = 0.0
        self.signs = 0.0  # the sum of the signs of D's real outputs since the last adjustment
        # (a tensor between adjustments)
        self.count = 0  # how many outputs that sum holds
        self.steps = 0  # D steps since the last adjustment

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """The images as D sees them (unchanged, with no random draw, while p is 0)."""
        if self.p <= 0:
            return images
        for transform in PIPELINE:
            images = with_probability(transform, images, self.p)
        return images

    def observe(self, real_signs: torch.Tensor) -> None:
        """Count the signs of one D step's outputs on reals (+1: says real), and every
        ADJUST_EVERY steps move p."""
        # a tensor until the adjustment: one host sync every ADJUST_EVERY steps, not each step
        self.signs = self.signs + real_signs.detach().float().sum()
        self.count += real_signs.numel()
        self.steps += 1
        if self.steps < ADJUST_EVERY:
            return
        r = float(self.signs) / self.count
        direction = (r > self.target) - (r < self.target)
        self.p = min(max(self.p + direction * self.count / (self.kimg * 1000), 0.0), 1.0)
        self.signs, self.count, self.steps = 0.0, 0, 0

    # ---- in a checkpoint ----------------------------------------------------------------
    def state_dict(self) -> dict[str, float | int]:
        return {"p": self.p, "signs": float(self.signs), "count": self.count, "steps": self.steps}

    def load_state_dict(self, state: dict | None) -> None:
        """A checkpoint's ADA state; none (a fork of a run without --ada): p starts at 0."""
        if state is None:
            state = {"p": 0.0, "signs": 0.0, "count": 0, "steps": 0}
        if not isinstance(state, dict):
            raise GanforgeError(f"its ADA state is not a mapping: {state!r}")
        p, signs, count, steps = (state.get(k) for k in ("p", "signs", "count", "steps"))
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (p, signs))
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (count, steps))
        if not (numbers and whole and 0 <= p <= 1 and 0 <= steps < ADJUST_EVERY and count >= 0):
            raise GanforgeError(f"its ADA state is out of range: {state}")
        if abs(signs) > count:
            raise GanforgeError(f"its ADA state is out of range: {state}")
        self.p, self.signs, self.count, self.steps = float(p), float(signs), count, steps

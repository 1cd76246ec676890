"""A GAN on points (2-D toy data: ring8, grid25, a CSV of points): the mode-collapse lab.

The networks are mlp's; what differs is the kind (POINTS: samples are (N, D) vectors, the
metrics count modes) and the progress picture, drawn as GAN Lab draws it but from the real
training: the real density, G's samples, D's decision over the plane and the direction G's
loss pushes each sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ganforge.i18n import N_
from ganforge.models.family import POINTS, Batch
from ganforge.models.gan import GANFamily
from ganforge.modules import eval_mode
from ganforge.sampling import sample_points

FRAME_REAL = 2000  # real points drawn as the density
FRAME_SAMPLES = 1000  # G's samples in a frame (or --n-grid, if more)
FRAME_ARROWS = 150  # samples with a gradient arrow
DECISION_GRID = 96  # D is evaluated on DECISION_GRID^2 points of the view


class PointGANFamily(GANFamily):
    """A GANFamily whose generator draws points (N, D) and whose progress grid is a frame."""

    kind = POINTS
    curve_panels = (
        *GANFamily.curve_panels,
        (N_("Modes captured (doctor, 2,500 samples)"), ("modes_captured", "num_modes")),
        (N_("Reverse KL over modes (doctor)"), ("reverse_kl",)),
    )

    def fixed_examples(
        self, dataset, held_out: Callable[[], object], seed: int, n: int
    ) -> Batch | None:
        """Real points the frames draw as the density (the same ones in every frame)."""
        count = min(FRAME_REAL, len(dataset))
        picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
        return {"images": dataset.points[picks[:count]].clone()}

    def judge(self, points: torch.Tensor) -> torch.Tensor:
        """D's logit for each point alone, as D sees it without instance noise: with --pack,
        a pack of copies of the point."""
        pack = self.remedies.pack
        if pack > 1:
            points = points.repeat_interleave(pack, dim=0)
            points = points.reshape(len(points) // pack, pack * points.shape[1])
        return self.discriminator(points)

    def preview(self, network: nn.Module, n: int, seed: int, examples: Batch | None = None):
        """One GAN Lab frame (uint8 (1, H, W, 3)) of the first two coordinates."""
        from ganforge.report.lab_frame import draw_lab_frame, view_of

        samples = torch.from_numpy(sample_points(self, network, max(n, FRAME_SAMPLES), seed))
        real = examples["images"] if examples else samples
        view = view_of(real.numpy())
        decision, arrows = self.decision_and_arrows(samples, view)
        frame = draw_lab_frame(real.numpy(), samples.numpy(), view, decision, *arrows)
        return frame[None], 1

    def decision_and_arrows(
        self, samples: torch.Tensor, view: tuple[float, float, float, float]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """D's probability of "real" over a grid of the view (DECISION_GRID^2, rows from the
        bottom), and for the first FRAME_ARROWS samples the direction G's loss moves them
        (minus its gradient by the sample). Touches no RNG and no parameter's gradient."""
        discriminator = self.discriminator
        device = next(discriminator.parameters()).device
        x0, x1, y0, y1 = view
        xs = torch.linspace(x0, x1, DECISION_GRID)
        ys = torch.linspace(y0, y1, DECISION_GRID)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
        if samples.shape[1] > 2:  # the plane of the first two coordinates, the rest at 0
            grid = torch.cat([grid, grid.new_zeros(len(grid), samples.shape[1] - 2)], dim=1)
        with eval_mode(discriminator), torch.no_grad():
            decision = torch.sigmoid(self.judge(grid.to(device))).reshape(
                DECISION_GRID, DECISION_GRID
            )
        points = samples[:FRAME_ARROWS].to(device).requires_grad_(True)
        with eval_mode(discriminator), torch.enable_grad():
            logits = self.judge(points)
            # a relativistic loss compares with D's real logits: drawn as if they were 0
            loss = self.adversarial_g_loss(logits, lambda: torch.zeros_like(logits))
            (gradient,) = torch.autograd.grad(loss, points)
        return decision.cpu().numpy(), (points.detach().cpu().numpy(), -gradient.cpu().numpy())

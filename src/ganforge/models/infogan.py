"""InfoGAN (Chen et al. 2016): part of G's input is a set of latent codes — one categorical code
of K values, and continuous codes uniform in [-1, 1] — and G is also asked to keep the mutual
information between the codes and its images high. The information is bounded from below by
how well a network Q reads the codes back from G(z, c) (the variational bound L_I), and Q
shares D's body: it is D's last layer with more outputs (one logit per category, one mean per
continuous code), as ACGAN's class head is. Without labels, the categorical code tends to
take the digit classes and the continuous ones the slant and the stroke width.

L_I = cross-entropy(Q's category logits, the category) + ½‖Q's means − the continuous codes‖²
(Q's Gaussian with unit variance, as the paper fixes it), weighted by `--info-weight`. Q learns
it in D's phase (on the fakes D judges), G in its own phase (through the frozen Q).

The networks are DCGAN's; G takes [noise, one-hot category, continuous codes] as its z
(`family.z_dim` is their total: what every tool samples and walks), the noise being
`--z-dim` wide. `ganforge latent codes RUN --out FILE` draws the code traversals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforge import bounds
from ganforge.config import ModelOptions, TrainConfig, check_at_least
from ganforge.errors import GanforgeError
from ganforge.i18n import N_
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.family import Kind
from ganforge.models.gan import GANFamily, gan_family
from ganforge.modules import device_of, eval_mode

LATENT_CODES = Kind(latent_codes=True)
MAX_CATEGORIES = 1000
MAX_CONTINUOUS = 64
# The paper's rates on MNIST: D 2e-4, G 1e-3; no label smoothing (the codes carry the signal)
DEFAULTS = {"lr_g": 1e-3, "lr_d": 2e-4, "z_dim": 62}


@dataclass
class InfoGANOptions(ModelOptions):
    categories: int = field(
        default=10, metadata={"help": "infogan: values of the categorical code (0: none)"}
    )
    continuous_codes: int = field(
        default=2, metadata={"help": "infogan: continuous codes, each uniform in [-1, 1]"}
    )
    info_weight: float = field(
        default=1.0,
        metadata={"help": "infogan: the weight lambda of the mutual-information term L_I"},
    )

    def check(self) -> None:
        check_at_least(self, ("categories", "continuous_codes"), 0, "must be 0 or more")
        bounds.check_at_most("--categories", self.categories, MAX_CATEGORIES)
        bounds.check_at_most("--continuous-codes", self.continuous_codes, MAX_CONTINUOUS)
        if self.categories == 1:
            raise GanforgeError("--categories: a code of one value carries nothing; give 0 or 2+")
        if not self.categories and not self.continuous_codes:
            raise GanforgeError("--categories, --continuous-codes: infogan needs a code")
        if not self.info_weight >= 0:
            raise GanforgeError(f"--info-weight: must be >= 0, got {self.info_weight}")


class InfoGANFamily(GANFamily):
    """GANFamily with codes in G's input and Q as D's extra head (class_head: D's output holds
    the real/fake logit in column 0, then Q's outputs). Logged besides GANFamily's: loss_info
    (L_I on the fakes D judges), info_accuracy (how often Q reads the category back)."""

    kind = LATENT_CODES
    curve_panels = (
        *GANFamily.curve_panels,
        (N_("Mutual information (InfoGAN)"), ("loss_info", "loss_info_g", "info_accuracy")),
    )
    class_head = True

    def __init__(self, generator, discriminator, z_dim: int, options: InfoGANOptions, **kw):
        self.noise_dim = z_dim  # --z-dim: the noise alone
        self.categories, self.continuous = options.categories, options.continuous_codes
        self.info_weight = options.info_weight
        super().__init__(generator, discriminator, z_dim=self.code_start + self.code_size, **kw)

    @property
    def code_start(self) -> int:
        return self.noise_dim

    @property
    def gaussian_part(self) -> slice:
        """The noise alone: truncation must leave the one-hot category and the codes be."""
        return slice(0, self.noise_dim)

    @property
    def code_size(self) -> int:
        return self.categories + self.continuous

    def latent(
        self, noise: torch.Tensor, category: torch.Tensor | None, continuous: torch.Tensor
    ) -> torch.Tensor:
        """G's input from its parts: noise (N, noise_dim), the category (N,) (None: no
        categorical code), the continuous codes (N, continuous)."""
        parts = [noise]
        if self.categories:
            parts.append(F.one_hot(category, self.categories).to(noise.dtype))
        return torch.cat([*parts, continuous.to(noise.dtype)], dim=1)

    def sample_latent(self, n, generator=None, device="cpu") -> torch.Tensor:
        """Noise ~ N(0, I), a uniform category, continuous codes ~ U(-1, 1)."""
        noise = torch.randn(n, self.noise_dim, generator=generator, device=device)
        category = None
        if self.categories:
            category = torch.randint(self.categories, (n,), generator=generator, device=device)
        continuous = torch.rand(n, self.continuous, generator=generator, device=device) * 2 - 1
        return self.latent(noise, category, continuous)

    def information_loss(self, head: torch.Tensor, z: torch.Tensor, stats: dict, key: str):
        """L_I of Q's outputs `head` for the fakes of noise `z`, weighted; logs it (`key`) and
        Q's category accuracy."""
        codes = z[:, self.code_start :]
        loss = head.new_zeros(())
        if self.categories:
            category = codes[:, : self.categories].argmax(1)
            logits = head[:, : self.categories]
            loss = loss + F.cross_entropy(logits, category)
            stats["info_accuracy"] = (logits.argmax(1) == category).float().mean().detach()
        if self.continuous:
            means = head[:, self.categories :]
            loss = loss + 0.5 * (means - codes[:, self.categories :]).pow(2).sum(1).mean()
        stats[key] = loss.detach()
        return self.info_weight * loss

    def d_head_loss(self, real_head, fake_head, labels, fake_labels, z, stats):
        """Q learns to read the codes of the fakes D judges (its head on reals is unused)."""
        return self.information_loss(fake_head, z, stats, "loss_info")

    def g_head_loss(self, fake_head, labels, z, stats):
        """G makes its codes readable by the frozen Q."""
        return self.information_loss(fake_head, z, stats, "loss_info_g")

    def traversal(
        self, network: nn.Module, seed: int, columns: int = 8, span: float = 2.0
    ) -> tuple[np.ndarray, list[str]]:
        """The code traversals (Chen et al.'s figures): for each continuous code, a block of one
        row per category, the code swept over [-span, span] along the columns, every other
        code at 0 and one fixed noise vector for the whole grid (seed); without continuous
        codes one block of the categories with the noise varied along the columns. uint8
        (rows * columns, H, W, C) and a caption per block."""
        from ganforge.data import to_uint8

        generator = torch.Generator().manual_seed(seed)
        rows = max(self.categories, 1)
        device = device_of(network)
        blocks, captions = [], []
        for code in range(max(self.continuous, 1)):
            if self.continuous:
                noise = torch.randn(1, self.noise_dim, generator=generator).expand(
                    rows * columns, -1
                )
                continuous = torch.zeros(rows * columns, self.continuous)
                sweep = torch.linspace(-span, span, columns)
                continuous[:, code] = sweep.repeat(rows)
                captions.append(f"continuous code {code + 1} from {-span:g} to {span:g}")
            else:
                noise = torch.randn(columns, self.noise_dim, generator=generator).repeat(rows, 1)
                continuous = torch.zeros(rows * columns, 0)
                captions.append("categories by row, noise by column")
            category = torch.arange(rows).repeat_interleave(columns) if self.categories else None
            z = self.latent(noise, category, continuous).to(device)
            with eval_mode(network), torch.no_grad():
                blocks.append(self.sample(network, z).cpu())
        images = to_uint8(torch.cat(blocks)).permute(0, 2, 3, 1).numpy()
        return images, captions


def build_infogan(config: TrainConfig, img_resolution: int, img_channels: int) -> InfoGANFamily:
    options: InfoGANOptions = config.model_options
    if config.replay:  # a replayed fake's codes are gone: Q would learn from the wrong ones
        raise GanforgeError("--replay: infogan's Q reads codes back from the fakes of this step")
    if config.pack > 1:
        raise GanforgeError("--pack: infogan's Q reads the codes of one sample at a time")
    code_size = options.categories + options.continuous_codes
    generator = DCGANGenerator(config.z_dim + code_size, img_resolution, img_channels, config.width)
    discriminator = DCGANDiscriminator(
        img_resolution,
        img_channels * config.pack,
        config.width,
        outputs=1 + code_size,
        minibatch_std=config.minibatch_std,
    )
    return gan_family(config, generator, discriminator, family=InfoGANFamily, options=options)

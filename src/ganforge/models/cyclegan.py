"""CycleGAN (Zhu et al. 2017): translation between two image sets A and B without pairs.

Two generators, G: A -> B and F: B -> A (ResNet generators: a 7x7 convolution, two strided
3x3 downsamplings, residual blocks, two transposed upsamplings, a 7x7 convolution; instance
normalisation and reflection padding), and two 70x70 PatchGAN discriminators, D_A and D_B.
Objective: least squares by default (the paper's), the cycle-consistency loss
lambda * (|F(G(a)) - a| + |G(F(b)) - b|) with lambda 10, and the identity loss
0.5 * lambda * (|G(b) - b| + |F(a) - a|), which keeps colours where no change is needed.
Each discriminator learns from a pool of the last 50 fakes (Shrivastava et al. 2017), half of
each batch drawn from the pool, so it does not chase the newest generator only; the pools
live in the discriminators' buffers, so they are in every checkpoint (exact resume).

The two generators are one network of the family ("generator": one optimiser and one EMA
over both, as the reference code chains them), the two discriminators another; the loop
knows nothing of either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ganforge import losses
from ganforge.config import ModelOptions, TrainConfig, check_at_least, flag_name
from ganforge.data import to_model_range, to_uint8
from ganforge.errors import GanforgeError
from ganforge.i18n import N_
from ganforge.models.dcgan import dcgan_init
from ganforge.models.family import Batch, Kind, ModelFamily, Phase
from ganforge.models.gan import configure_discriminator
from ganforge.models.kept_fakes import KeptFakes, fakes_for_d, kept_fakes
from ganforge.models.pix2pix import PatchDiscriminator, norm_layer
from ganforge.modules import device_of, eval_mode

UNPAIRED_TRANSLATOR = Kind(data="unpaired", translator=True)
PHASES = (
    Phase("discriminator", network="discriminator", repeats="d_steps", fresh_batch=True),
    Phase("generator", network="generator", repeats=None, fresh_batch=False),
)
MAX_POOL = 1000
MAX_RES_BLOCKS = 32
PREVIEW_EXAMPLES = 6  # rows of A -> G(A) -> F(G(A)) | B -> F(B) -> G(F(B))
# the paper: recipe of the reference code (lr 2e-4 for both, Adam 0.5, least squares, no
# smoothing; its linear decay after half the epochs is not applied here)
DEFAULTS = {"loss": "least-squares", "label_smoothing": 0.0, "lr_g": 2e-4, "lr_d": 2e-4}


@dataclass
class CycleGANOptions(ModelOptions):
    cycle_weight: float = field(
        default=10.0, metadata={"help": "cyclegan: weight lambda of the cycle-consistency loss"}
    )
    identity_weight: float = field(
        default=0.5,
        metadata={"help": "cyclegan: identity loss weight, times --cycle-weight (0: off)"},
    )
    image_pool: int = field(
        default=50, metadata={"help": "cyclegan: earlier fakes each D learns from (0: none)"}
    )
    res_blocks: int = field(
        default=0,
        metadata={
            "help": "cyclegan: residual blocks in each generator (0: 9 at 256 px and more, "
            "6 from 64 px, 3 below)"
        },
    )

    def check(self) -> None:
        check_at_least(self, ("cycle_weight", "identity_weight"), 0, "must be >= 0")
        check_at_least(self, ("image_pool", "res_blocks"), 0, "must be 0 or more")
        for name, bound in (("image_pool", MAX_POOL), ("res_blocks", MAX_RES_BLOCKS)):
            if getattr(self, name) > bound:
                raise GanforgeError(
                    f"{flag_name(name)}: at most {bound}, got {getattr(self, name)}"
                )


def residual_blocks(resolution: int) -> int:
    """The paper's 9 blocks at 256 px and 6 at 128 px; 6 down to 64 px and 3 below."""
    return 9 if resolution >= 256 else 6 if resolution >= 64 else 3


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        norm = norm_layer("instance")
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """images (N, C, R, R) in [-1, 1] -> images (N, C, R, R) in [-1, 1]; R a multiple of 4."""

    def __init__(self, img_resolution: int, img_channels: int, width: int, blocks: int):
        super().__init__()
        if img_resolution % 4:
            raise GanforgeError(
                f"--resolution: cyclegan's generators halve the image twice: {img_resolution} "
                "is not a multiple of 4"
            )
        norm = norm_layer("instance")
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(img_channels, width, 7),
            norm(width),
            nn.ReLU(True),
        ]
        for factor in (1, 2):  # down: width -> 2 width -> 4 width
            w = width * factor
            layers += [nn.Conv2d(w, 2 * w, 3, 2, 1), norm(2 * w), nn.ReLU(True)]
        layers += [ResidualBlock(4 * width) for _ in range(blocks)]
        for factor in (4, 2):  # up: 4 width -> 2 width -> width
            w = width * factor
            layers += [
                nn.ConvTranspose2d(w, w // 2, 3, 2, 1, output_padding=1),
                norm(w // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, img_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class CycleGenerators(nn.Module):
    """G (`ab`: A -> B) and F (`ba`: B -> A); called as a network, it translates A -> B."""

    def __init__(self, img_resolution: int, img_channels: int, width: int, blocks: int):
        super().__init__()
        self.ab = ResnetGenerator(img_resolution, img_channels, width, blocks)
        self.ba = ResnetGenerator(img_resolution, img_channels, width, blocks)

    def forward(self, sources: torch.Tensor) -> torch.Tensor:
        return self.ab(sources)


class ImagePool(nn.Module):
    """The last `size` fakes shown to a discriminator, as buffers (saved with it). Each fake of
    a batch goes in; once the pool is full, each has an even chance of being swapped for a
    random older one, which D sees instead (the reference code's rule)."""

    def __init__(self, size: int, img_resolution: int, img_channels: int):
        super().__init__()
        self.size = size
        self.register_buffer(
            "images", torch.zeros(size, img_channels, img_resolution, img_resolution)
        )
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        shown = fakes.clone()
        for i in range(len(fakes)):  # batches are small; the rule is sequential
            filled = int(self.count)
            if filled < self.size:
                self.images[filled] = fakes[i]
                self.count += 1
            elif bool(torch.rand((), device=fakes.device) < 0.5):
                slot = int(torch.randint(self.size, (), device=fakes.device))
                shown[i] = self.images[slot].clone()
                self.images[slot] = fakes[i]
        return shown


class CycleDiscriminators(nn.Module):
    """D_A (`a`) judges side A, D_B (`b`) side B, each a 70x70 PatchGAN of single images with
    its own pool of earlier fakes."""

    def __init__(self, img_resolution: int, img_channels: int, width: int, pool: int):
        super().__init__()
        common = {"img_resolution": img_resolution, "img_channels": img_channels}
        self.a = PatchDiscriminator(**common, width=width, norm="instance", inputs=1)
        self.b = PatchDiscriminator(**common, width=width, norm="instance", inputs=1)
        self.pool_a = ImagePool(pool, **common)
        self.pool_b = ImagePool(pool, **common)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.b(images)


class CycleGANFamily(ModelFamily):
    """The two generators and the two discriminators, in GANFamily's phases (D, then G on the
    same batch: "sources" are side A, "images" side B).

    Logged statistics: loss_d (the mean of both discriminators' losses), d_real / d_fake /
    d_accuracy over both (as GANFamily reads logits), loss_g (both generators' adversarial losses),
    loss_cycle and loss_identity (unweighted L1 means), d_fake_g."""

    phases = PHASES
    sampler = "generator"
    kind = UNPAIRED_TRANSLATOR
    directions = ("a2b", "b2a")
    curve_panels = (
        (N_("Losses"), ("loss_d", "loss_g", "loss_cycle", "loss_identity")),
        (N_("Discriminator outputs"), ("d_real", "d_fake")),
        (N_("Discriminator accuracy"), ("d_accuracy",)),
    )
    progress_stats = ("loss_d", "loss_g", "loss_cycle")

    def __init__(
        self,
        generators: CycleGenerators,
        discriminators: CycleDiscriminators,
        loss: str = "least-squares",
        label_smoothing: float = 0.0,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        kept: KeptFakes | None = None,
    ):
        self.networks = nn.ModuleDict({"generator": generators, "discriminator": discriminators})
        self.kept_fakes = kept  # --reuse-fakes (models/kept_fakes.py)
        self.z_dim = 0
        d_loss, self.g_loss = losses.LOSSES[loss]
        if loss in losses.SMOOTHED_LOSSES:
            self.d_loss = lambda real, fake: d_loss(real, fake, real_label=1.0 - label_smoothing)
        else:
            self.d_loss = d_loss
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight

    def set_progress(self, step: int, total: int) -> None:
        if self.kept_fakes is not None:  # fakes of the last iteration are never reused
            self.kept_fakes.clear()

    def sample_latent(self, n, generator=None, device="cpu") -> torch.Tensor:
        """No noise: (n, 0)."""
        return torch.empty(n, 0, device=device)

    def sample(self, network, z, condition=None) -> torch.Tensor:
        if condition is None:
            raise GanforgeError("a translator needs the source images to translate")
        return network.ab(condition)

    def translate(self, network, sources: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        if direction not in self.directions:
            raise GanforgeError(f"--direction: '{direction}' is not one of a2b, b2a")
        return (network.ab if direction == "a2b" else network.ba)(sources)

    def phase_loss(self, phase: str, batch: Batch):
        real_a, real_b = batch["sources"], batch["images"]
        generators = self.networks["generator"]
        discriminators = self.networks["discriminator"]
        if phase == "discriminator":
            fake_b, fake_a = fakes_for_d(
                self.kept_fakes,
                generators,
                real_b,
                lambda: (generators.ab(real_a), generators.ba(real_b)),
            )
            fake_b, fake_a = (
                discriminators.pool_b.query(fake_b),
                discriminators.pool_a.query(fake_a),
            )
            real_logits = (discriminators.a(real_a), discriminators.b(real_b))
            fake_logits = (discriminators.a(fake_a), discriminators.b(fake_b))
            loss = (
                self.d_loss(real_logits[0], fake_logits[0])
                + self.d_loss(real_logits[1], fake_logits[1])
            ) / 2
            real = torch.cat([r.flatten() for r in real_logits])
            fake = torch.cat([f.flatten() for f in fake_logits])
            return loss, {
                "loss_d": loss.detach(),
                "d_real": torch.sigmoid(real).mean().detach(),
                "d_fake": torch.sigmoid(fake).mean().detach(),
                "d_accuracy": (
                    ((real > 0).float().mean() + (fake < 0).float().mean()) / 2
                ).detach(),
            }
        if phase == "generator":
            kept = self.kept_fakes.take(real_b) if self.kept_fakes is not None else None
            fake_b, fake_a = kept or (generators.ab(real_a), generators.ba(real_b))
            logits_b, logits_a = discriminators.b(fake_b), discriminators.a(fake_a)
            adversarial = self.g_loss(logits_b) + self.g_loss(logits_a)
            cycle = (generators.ba(fake_b) - real_a).abs().mean()
            cycle = cycle + (generators.ab(fake_a) - real_b).abs().mean()
            loss = adversarial + self.cycle_weight * cycle
            fake_logits = torch.cat([logits_b.flatten(), logits_a.flatten()])
            stats = {
                "loss_g": adversarial.detach(),
                "loss_cycle": cycle.detach(),
                "d_fake_g": torch.sigmoid(fake_logits).mean().detach(),
            }
            if self.identity_weight > 0:
                identity = (generators.ab(real_b) - real_b).abs().mean()
                identity = identity + (generators.ba(real_a) - real_a).abs().mean()
                loss = loss + self.identity_weight * self.cycle_weight * identity
                stats["loss_identity"] = identity.detach()
            return loss, stats
        raise ValueError(f"CycleGANFamily has no phase '{phase}'")

    # ---- grids -------------------------------------------------------------------------
    def fixed_conditions(self, dataset, picks: torch.Tensor) -> torch.Tensor:
        return to_model_range(dataset.sources_at(picks).cpu())

    def fixed_examples(self, dataset, held_out, seed: int, n: int) -> Batch:
        """A few fixed images of each side (float [-1, 1], CPU), held out where the data has
        a test split, picked by their own seeded generator."""
        dataset = held_out()
        count = min(n, PREVIEW_EXAMPLES, len(dataset))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
        picks = order[:count].sort().values
        return {
            "sources": to_model_range(dataset.sources_at(picks).cpu()),
            "images": to_model_range(dataset.images_at(picks).cpu()),
        }

    def preview(self, network, n: int, seed: int, examples: Batch | None = None):
        """Rows of a -> G(a) -> F(G(a)) | b -> F(b) -> G(F(b)): both translations and their
        way back, for the fixed examples."""
        if examples is None:
            raise GanforgeError("a translator's preview needs example images")
        with eval_mode(network):
            device = device_of(network)
            a, b = examples["sources"].to(device), examples["images"].to(device)
            a2b, b2a = network.ab(a), network.ba(b)
            row = [a, a2b, network.ba(a2b), b, b2a, network.ab(b2a)]
        cells = torch.stack([image.cpu() for image in row], dim=1).flatten(0, 1)
        return to_uint8(cells).permute(0, 2, 3, 1).numpy(), 6


# options of GANFamily's remedies that cyclegan does not take: flag -> off value
_NOT_TAKEN = {
    "gp": 0.0,
    "r1": 0.0,
    "instance_noise": 0.0,
    "diffaugment": "",
    "g_loss": "non-saturating",
    "r2": 0.0,
    "reg_every": 1,
    "clip_weights": 0.0,
    "replay": 0,  # its --image-pool is CycleGAN's own replay
    "ada": 0.0,
}


def build_cyclegan(config: TrainConfig, img_resolution: int, img_channels: int) -> CycleGANFamily:
    for name, off in _NOT_TAKEN.items():
        if getattr(config, name) != off:
            raise GanforgeError(f"{flag_name(name)}: cyclegan does not take it")
    if config.loss in losses.RELATIVISTIC_LOSSES:
        raise GanforgeError(f"--loss: cyclegan does not take {config.loss}")
    options: CycleGANOptions = config.model_options
    blocks = options.res_blocks or residual_blocks(img_resolution)
    common = {"img_resolution": img_resolution, "img_channels": img_channels, "width": config.width}
    discriminators = CycleDiscriminators(**common, pool=options.image_pool)
    for name in ("a", "b"):  # --spectral-norm, as for every discriminator
        configure_discriminator(getattr(discriminators, name), config)
    return CycleGANFamily(
        CycleGenerators(**common, blocks=blocks),
        discriminators,
        loss=config.loss,
        label_smoothing=config.label_smoothing,
        cycle_weight=options.cycle_weight,
        identity_weight=options.identity_weight,
        kept=kept_fakes(config),
    )

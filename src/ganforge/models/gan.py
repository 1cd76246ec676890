"""The classic two-player family (mlp, dcgan): D learns real=1 / fake=0, then G learns
through a frozen D with its fakes labelled 1 — with the remedies of docs/reference/remedies (another
loss, gradient penalties, DiffAugment, instance noise) as options, all off by default."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import losses
from ganforge.config import TrainConfig, diffaugment_policies, option_error
from ganforge.errors import GanforgeError
from ganforge.i18n import N_
from ganforge.models.ada import AdaptiveAugment
from ganforge.models.diffaugment import diff_augment
from ganforge.models.family import CLASS_CONDITIONAL, Batch, ModelFamily, Phase
from ganforge.models.kept_fakes import KeptFakes, fakes_for_d, kept_fakes
from ganforge.models.layers import MinibatchStd
from ganforge.models.normalization import remove_batchnorm, spectral_normalize
from ganforge.models.replay import ReplayPool
from ganforge.models.unrolled import unrolled_discriminator
from ganforge.sampling import balanced_labels, class_rows

GAN_PHASES = (
    Phase("discriminator", network="discriminator", repeats="d_steps", fresh_batch=True),
    Phase("generator", network="generator", repeats=None, fresh_batch=False),
)


@dataclass(frozen=True)
class Remedies:
    """How D's objective and inputs differ from the plain recipe (the defaults: none).

    `loss`: a key of losses.LOSSES; `gp`, `r1`: penalty weights (0: off); `instance_noise`:
    the starting std of noise added to D's inputs, annealed linearly to 0 over the run;
    `diffaugment`: augmentation names applied to D's inputs (models/diffaugment.py);
    `pack`: how many samples D judges at once, concatenated along channels (PacGAN; 1: off);
    `feature_matching`: G's loss is the distance between the mean of D's last hidden features
    on real and on fake samples (Salimans et al. 2016); `unroll`: G's loss is taken against D
    after this many more of D's optimiser steps, differentiated through (Metz et al. 2017);
    `r2`: the zero-centred penalty on fakes; `reg_every`: the penalties only every this many
    iterations, times this many (lazy regularisation); `reg_decay`: their weights fall by a
    cosine to `reg_final` of themselves over the run (R3GAN's gamma schedule);
    `clip_weights`: D's weights clipped to [-C, C] after each of its steps (0: off); `replay`:
    the size of the pool of earlier fakes D sees again (0: off); `ada`: ADA's target (0: off),
    `ada_kimg` its speed.
    """

    loss: str = "bce"
    gp: float = 0.0
    r1: float = 0.0
    instance_noise: float = 0.0
    diffaugment: tuple[str, ...] = ()
    pack: int = 1
    feature_matching: bool = False
    unroll: int = 0
    r2: float = 0.0
    reg_every: int = 1
    reg_decay: str = "none"
    reg_final: float = 0.1
    clip_weights: float = 0.0
    replay: int = 0
    ada: float = 0.0
    ada_kimg: float = 100.0


def gan_remedies(config: TrainConfig) -> Remedies:
    """The remedies a config asks for (docs/reference/remedies), for any GAN family."""
    return Remedies(
        loss=config.loss,
        gp=config.gp,
        r1=config.r1,
        instance_noise=config.instance_noise,
        diffaugment=diffaugment_policies(config.diffaugment),
        pack=config.pack,
        feature_matching=config.feature_matching,
        unroll=config.unroll,
        r2=config.r2,
        reg_every=config.reg_every,
        reg_decay=config.reg_decay,
        reg_final=config.reg_final,
        clip_weights=config.clip_weights,
        replay=config.replay,
        ada=config.ada,
        ada_kimg=config.ada_kimg,
    )


def configure_discriminator(
    discriminator: nn.Module,
    config: TrainConfig,
    packs: bool = False,
    matches: bool = False,
    unrolls: bool = False,
) -> nn.Module:
    """The layer options every discriminator gets: --spectral-norm, and no batchnorm with
    --spectral-norm or --gp (docs/reference/remedies). A discriminator built for --pack says so
    (`packs`), one built with --minibatch-std holds the layer, a family that matches features
    (`matches`) has a D with `features(images)`, and one whose G loss is GANFamily's can
    unroll D (`unrolls`): otherwise the flags are refused, not ignored."""
    if config.unroll and not unrolls:
        raise option_error("unroll", f"{config.model}'s generator loss does not unroll D")
    if config.pack > 1 and not packs:
        raise option_error(
            "pack", f"{config.model}'s discriminator judges one sample at a time (not packs)"
        )
    if config.feature_matching and not (matches and hasattr(discriminator, "features")):
        raise option_error(
            "feature_matching", f"{config.model}'s generator has no features of D to match"
        )
    if config.minibatch_std and not any(
        isinstance(m, MinibatchStd) for m in discriminator.modules()
    ):
        raise option_error(
            "minibatch_std", f"{config.model}'s discriminator has no minibatch-std layer"
        )
    if config.spectral_norm or config.gp > 0:
        remove_batchnorm(discriminator)
    if config.spectral_norm:
        spectral_normalize(discriminator)
    return discriminator


def gan_family(
    config: TrainConfig,
    generator: nn.Module,
    discriminator: nn.Module,
    family: type[GANFamily] | None = None,
    **kw,
):
    """A GANFamily (or the `family` subclass) of these networks with the config's objective
    and remedies; `kw`: the conditional options of GANFamily."""
    packs = not kw.get("num_classes")  # a class-conditional D judges a sample with its class
    matches = not kw.get("d_takes_labels")  # features of images alone
    return (family or GANFamily)(
        generator,
        configure_discriminator(discriminator, config, packs=packs, matches=matches, unrolls=True),
        z_dim=config.z_dim,
        g_loss=config.g_loss,
        label_smoothing=config.label_smoothing,
        remedies=gan_remedies(config),
        kept=kept_fakes(config),
        **kw,
    )


class GANFamily(ModelFamily):
    """A generator and a discriminator trained on D's logits with one of losses.LOSSES.

    Logged statistics: loss_d (the adversarial loss, without penalties), d_real / d_fake (the
    mean of sigmoid(logit) for every loss: D's probability for bce, a squashed critic score
    otherwise), d_accuracy (the share of logits on the right side of 0), and with a loss other
    than bce also d_real_logit / d_fake_logit (raw mean critic scores); gp, r1 and r2
    (unweighted) when on; ada_p with --ada; loss_g and d_fake_g in the generator phase. With
    a relativistic loss, whose logits mean nothing alone, d_real, d_fake and d_accuracy
    compare each logit with the other side's mean instead of with 0.
    """

    phases = GAN_PHASES
    sampler = "generator"
    curve_panels = (
        (N_("Losses"), ("loss_d", "loss_g", "loss_d_aux", "loss_g_aux")),
        (N_("Discriminator outputs"), ("d_real", "d_fake")),
        (N_("Discriminator accuracy"), ("d_accuracy",)),
        (N_("Penalties (--gp, --r1, --r2)"), ("gp", "r1", "r2")),
        (N_("Augmentation probability (--ada)"), ("ada_p",)),
    )
    progress_stats = ("loss_d", "loss_g")
    d_takes_labels = False  # cgan: D(x, y)
    class_head = False  # acgan: D's output holds the real/fake logit, then class logits
    aux_weight = 0.0  # acgan: the weight of the class head's loss
    aux_fakes = False  # acgan: D's class head also learns from fakes

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        z_dim: int,
        g_loss: str = "non-saturating",
        label_smoothing: float = 0.0,
        remedies: Remedies | None = None,
        num_classes: int = 0,
        d_takes_labels: bool = False,
        class_head: bool = False,
        aux_weight: float = 0.0,
        aux_fakes: bool = False,
        kept: KeptFakes | None = None,
    ):
        self.networks = nn.ModuleDict({"generator": generator, "discriminator": discriminator})
        self.z_dim = z_dim
        if num_classes:  # models/conditional.py: G(z, y); D(x, y) or D(x) with a class head
            self.kind, self.num_classes = CLASS_CONDITIONAL, num_classes
            self.d_takes_labels, self.class_head = d_takes_labels, class_head
            self.aux_weight, self.aux_fakes = aux_weight, aux_fakes
        self.remedies = remedies = remedies or Remedies()
        self.real_label = 1.0 - label_smoothing
        d_loss, g_default = losses.LOSSES[remedies.loss]
        if remedies.loss in losses.SMOOTHED_LOSSES:
            d_loss = partial(d_loss, real_label=self.real_label)
        self.d_loss = d_loss
        self.g_loss = losses.G_LOSSES[g_loss] if remedies.loss == "bce" else g_default
        self.relativistic = remedies.loss in losses.RELATIVISTIC_LOSSES
        self.noise_std = remedies.instance_noise
        self.regularise_now = True  # lazy regularisation: this iteration adds the penalties
        self.reg_factor = 1.0  # --reg-decay: the share of the penalties' weights now
        self.d_optimizer: torch.optim.Optimizer | None = None  # what --unroll unrolls
        self.replay = ReplayPool(remedies.replay) if remedies.replay else None
        self.ada = AdaptiveAugment(remedies.ada, remedies.ada_kimg) if remedies.ada else None
        self.kept_fakes = kept  # --reuse-fakes (models/kept_fakes.py)

    def attach_optimizers(self, optimizers) -> None:
        """--unroll steps D as D's own optimiser does, from its current state."""
        self.d_optimizer = optimizers.get("discriminator")

    @property
    def generator(self) -> nn.Module:
        return self.networks["generator"]

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=generator, device=device)

    def sample(
        self, network: nn.Module, z: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not self.kind.class_conditional:
            return network(z)
        if condition is None:
            raise GanforgeError("a class-conditional model needs the classes to draw")
        return network(z, condition)

    def fixed_conditions(self, dataset, picks: torch.Tensor) -> torch.Tensor | None:
        """A class-conditional G draws every class equally often; others take no condition."""
        if not self.kind.class_conditional:
            return None
        return balanced_labels(len(picks), self.num_classes)

    def preview(self, network: nn.Module, n: int, seed: int, examples: Batch | None = None):
        """Fixed noise; a class-conditional model's grid has one row per class, each column
        one noise vector (what the label changes, and what the noise keeps)."""
        if not self.kind.class_conditional:
            return super().preview(network, n, seed, examples)
        per_class = max(1, n // self.num_classes)
        return class_rows(self, network, per_class, seed)[0], per_class

    def set_progress(self, step: int, total: int) -> None:
        """Called by the loop before each iteration (`step` iterations done of `total`): anneals
        the instance noise linearly from its starting std at step 0 towards 0 at `total`."""
        self.noise_std = self.remedies.instance_noise * max(0.0, 1.0 - step / max(total, 1))
        if self.kept_fakes is not None:  # fakes of the last iteration are never reused
            self.kept_fakes.clear()
        self.regularise_now = step % self.remedies.reg_every == 0
        if self.remedies.reg_decay == "cosine":
            final, progress = self.remedies.reg_final, min(step / max(total, 1), 1.0)
            self.reg_factor = final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))

    def after_step(self, phase: str) -> None:
        """--clip-weights: D's weights back into [-C, C] after each of its steps."""
        clip = self.remedies.clip_weights
        if phase == "discriminator" and clip > 0:
            with torch.no_grad():
                for parameter in self.discriminator.parameters():
                    parameter.clamp_(-clip, clip)

    def training_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """The replay pool's fakes and ADA's probability (docs/run-folder)."""
        tensors = self.replay.state_tensors() if self.replay is not None else {}
        meta = {"ada": self.ada.state_dict()} if self.ada is not None else {}
        return tensors, meta

    def load_training_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        if self.replay is not None:
            self.replay.load_state_tensors(tensors, next(self.discriminator.parameters()).device)
        if self.ada is not None:
            self.ada.load_state_dict(meta.get("ada"))

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G's images for noise `z` (and, for a class-conditional G, `labels`)."""
        return self.generator(z) if labels is None else self.generator(z, labels)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None, network=None):
        """D's raw output for images as D sees them in training (`d_inputs`), one output per
        pack; a conditional D gets `labels`. `network`: D as a callable (an unrolled D)."""
        images = self.d_inputs(images)
        network = network or self.discriminator
        if labels is None or not self.d_takes_labels:
            return network(images)
        return network(images, labels)

    def d_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Images as D sees them in training: DiffAugment, ADA, then instance noise, then
        packed (all off by default: then exactly the images)."""
        images = diff_augment(images, self.remedies.diffaugment)
        if self.ada is not None:
            images = self.ada.augment(images)
        if self.noise_std > 0:
            images = images + self.noise_std * torch.randn_like(images)
        if self.remedies.pack > 1:  # consecutive samples side by side along channels
            pack = self.remedies.pack
            images = images.reshape(len(images) // pack, pack * images.shape[1], *images.shape[2:])
        return images

    def feature_distance(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Feature matching (Salimans et al. 2016): the squared distance between the mean of
        D's last hidden features on the real and on the fake samples, as D sees them."""
        with torch.no_grad():
            target = self.discriminator.features(self.d_inputs(real)).flatten(1).mean(0)
        matched = self.discriminator.features(self.d_inputs(fake)).flatten(1).mean(0)
        return (target - matched).pow(2).sum()

    def critic(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, network=None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's real/fake logits (N,), and its class logits (N, C) when D has an auxiliary
        classifier head (then D's output holds the real/fake logit in column 0)."""
        out = self.discriminate(images, labels, network)
        if self.class_head:
            return out[:, 0], out[:, 1:]
        return out, None

    def phase_loss(self, phase: str, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = batch["images"]
        # Fakes are drawn for the real batch's labels: p(y) of the data, and a gradient
        # penalty between real and fake images of the same classes.
        labels = batch["labels"] if self.kind.class_conditional else None
        if phase == "discriminator":
            z = self.sample_latent(real.shape[0], device=real.device)
            fake, _ = fakes_for_d(
                self.kept_fakes, self.generator, real, lambda: (self.generate(z, labels), z)
            )
            return self._discriminator_loss(real, fake, labels, z)
        if phase == "generator":
            kept = self.kept_fakes.take(real) if self.kept_fakes is not None else None
            if kept is None:
                z = self.sample_latent(real.shape[0], device=real.device)
                fake = self.generate(z, labels)
            else:  # --reuse-fakes: D's noise, G's graph recorded in D's phase
                fake, z = kept
            judge = self.unrolled(real, fake, labels) if self.remedies.unroll else None
            fake_logits, fake_classes = self.critic(fake, labels, judge)
            if self.remedies.feature_matching:  # instead of D's verdict
                loss = self.feature_distance(real, fake)
            else:
                loss = self.adversarial_g_loss(
                    fake_logits, lambda: self.critic(real, labels, judge)[0]
                )
            d_fake = torch.sigmoid(fake_logits).mean().detach()
            stats = {"loss_g": loss.detach(), "d_fake_g": d_fake}
            if fake_classes is not None:
                loss = loss + self.g_head_loss(fake_classes, labels, z, stats)
            return loss, stats
        raise ValueError(f"GANFamily has no phase '{phase}'")

    def unrolled(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None):
        """D after --unroll steps of its optimiser on its adversarial loss for this batch,
        through which G's loss is differentiated (models/unrolled.py)."""
        if self.d_optimizer is None:
            raise RuntimeError("--unroll needs D's optimiser: call attach_optimizers first")

        def d_loss(network) -> torch.Tensor:  # the adversarial loss alone: no penalties
            real_logits = self.critic(real, labels, network)[0]
            return self.d_loss(real_logits, self.critic(fake, labels, network)[0])

        return unrolled_discriminator(
            self.discriminator, self.d_optimizer, d_loss, self.remedies.unroll
        )

    def adversarial_g_loss(self, fake_logits: torch.Tensor, real_logits) -> torch.Tensor:
        """G's adversarial loss on D's logits for its fakes; a relativistic loss also reads
        D's logits for the batch's reals: `real_logits()` gives them (only it pays for them)."""
        if self.relativistic:
            return self.g_loss(fake_logits, real_logits())
        return self.g_loss(fake_logits)

    def verdicts(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict:
        """d_real, d_fake (mean sigmoids) and d_accuracy (the share on the right side): of the
        logits themselves, or for a relativistic loss of each logit minus the other side's
        mean (its logits are only defined up to a shift)."""
        real_point = fake_logits.mean() if self.relativistic else 0.0
        fake_point = real_logits.mean() if self.relativistic else 0.0
        real, fake = real_logits - real_point, fake_logits - fake_point
        accuracy = ((real > 0).float().mean() + (fake < 0).float().mean()) / 2
        return {
            "d_real": torch.sigmoid(real).mean().detach(),
            "d_fake": torch.sigmoid(fake).mean().detach(),
            "d_accuracy": accuracy.detach(),
        }

    def d_head_loss(self, real_head, fake_head, labels, fake_labels, z, stats) -> torch.Tensor:
        """The weighted loss of D's extra head in D's phase, its statistics put in `stats`.
        ACGAN's: the real images' classes (and with aux_fakes, the classes fakes were drawn
        for). `z`: the noise of this step's fakes (a head that reads codes out of it)."""
        aux = F.cross_entropy(real_head, labels)
        if self.aux_fakes:  # Odena et al.'s original: and the classes fakes were drawn for
            aux = aux + F.cross_entropy(fake_head, fake_labels)
        stats["loss_d_aux"] = aux.detach()
        stats["aux_accuracy"] = (real_head.argmax(1) == labels).float().mean().detach()
        return self.aux_weight * aux

    def g_head_loss(self, fake_head, labels, z, stats) -> torch.Tensor:
        """The weighted loss of D's extra head on G's fakes in G's phase (ACGAN's: the
        classes they were drawn for), its statistics put in `stats`."""
        aux = F.cross_entropy(fake_head, labels)
        stats["loss_g_aux"] = aux.detach()
        return self.aux_weight * aux

    def _discriminator_loss(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        labels: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        remedies = self.remedies
        fake_labels = labels
        if self.replay is not None:  # half of the fakes from earlier steps (models/replay.py)
            fake, fake_labels = self.replay.mix(fake, labels)
        regularise = self.regularise_now
        if remedies.r1 > 0 and regularise:  # R1 differentiates D's real logits by the images
            real = real.detach().requires_grad_(True)
        if remedies.r2 > 0 and regularise:  # R2, the fake logits by the fakes
            fake = fake.detach().requires_grad_(True)
        real_logits, real_classes = self.critic(real, labels)
        fake_logits, fake_classes = self.critic(fake, fake_labels)
        adversarial = self.d_loss(real_logits, fake_logits)
        stats = {"loss_d": adversarial.detach(), **self.verdicts(real_logits, fake_logits)}
        if remedies.loss != "bce":
            stats["d_real_logit"] = real_logits.mean().detach()
            stats["d_fake_logit"] = fake_logits.mean().detach()
        if self.ada is not None:  # p as this step used it, then moved by D's verdicts
            stats["ada_p"] = torch.tensor(self.ada.p)
            self.ada.observe(torch.sign(real_logits - self._decision_point(fake_logits)))
        loss = adversarial
        if real_classes is not None:  # D's extra head (ACGAN's classes, InfoGAN's codes)
            loss = loss + self.d_head_loss(
                real_classes, fake_classes, labels, fake_labels, z, stats
            )
        if regularise:
            loss = loss + self._penalties(real, fake, real_logits, fake_logits, labels, stats)
        return loss, stats

    def _penalties(self, real, fake, real_logits, fake_logits, labels, stats) -> torch.Tensor:
        """--gp, --r1 and --r2, weighted (times --reg-every: they are added every that many
        iterations only); each unweighted value goes into `stats`."""
        remedies, total = self.remedies, 0.0
        scale = remedies.reg_every * self.reg_factor
        if remedies.gp > 0:
            penalty = losses.gradient_penalty(
                lambda images: self.critic(images, labels)[0], real, fake
            )
            total = total + scale * remedies.gp * penalty
            stats["gp"] = penalty.detach()
        for name, gamma, logits, images in (
            ("r1", remedies.r1, real_logits, real),
            ("r2", remedies.r2, fake_logits, fake),
        ):
            if gamma > 0:
                penalty = losses.zero_centred_penalty(logits, images)
                total = total + scale * gamma / 2 * penalty
                stats[name] = penalty.detach()
        return total

    def _decision_point(self, fake_logits: torch.Tensor) -> torch.Tensor | float:
        """Where D's output on a real image turns from "fake" to "real", for ADA's sign: 0 for
        bce and hinge, halfway between the targets for least squares, and for losses defined
        up to a shift (wasserstein, relativistic) the batch's mean fake score."""
        if self.remedies.loss in ("bce", "hinge"):
            return 0.0
        if self.remedies.loss == "least-squares":
            return self.real_label / 2
        return fake_logits.detach().mean()

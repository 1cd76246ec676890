"""The run configuration in sections: what data, which model, how it is optimised, how the
loop runs, how it is evaluated, the remedies, the doctor, and speed. Each section is a
dataclass with its own checks; TrainConfig (train_config.py) is all of them at once, so an
option is read as `config.lr_g` whatever its section."""

from __future__ import annotations

from dataclasses import dataclass, field

from ganforge import bounds
from ganforge.config.checks import (
    check_at_least,
    check_choice,
    check_in_range,
    option_error,
)
from ganforge.metrics.catalog import eval_metric_names

OPTIMIZERS = ("adam", "rmsprop", "sgd")
LR_DECAYS = ("none", "linear", "cosine")
REG_DECAYS = ("none", "cosine")
G_LOSSES = ("non-saturating", "saturating")
LOSSES = ("bce", "hinge", "wasserstein", "least-squares", "relativistic", "relativistic-average")
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
DATA_CACHES = ("auto", "device", "cpu", "stream")
PRECISIONS = ("fp32", "bf16", "fp16")
MAX_PACK = 16  # PacGAN packs 2-4 samples; D's input grows with it
MAX_UNROLL = 50  # Unrolled GAN used up to 10 steps; each costs about one more D step of G's
MAX_ACCUMULATE = 1024  # batches summed into one update; --batch-size x this images a step
MAX_REG_EVERY = 1024  # StyleGAN2 regularises every 16 steps
MAX_REPLAY = 100_000  # fakes kept for --replay: memory, and in every checkpoint
MAX_LEARNING_RATE = 1000.0  # no GAN trains near it; ~1e38 overflows float32 mid-step
EVAL_METRICS = eval_metric_names()  # the metric registry's (ganforge.metrics.catalog)
DOCTOR_THRESHOLDS = (  # TrainConfig.doctor_<name>
    "warmup",
    "patience",
    "repeat",
    "window",
    "explode_factor",
    "vanish_factor",
    "vanish_accuracy",
    "d_accuracy",
    "g_accuracy",
    "g_d_fake",
    "diversity",
    "collapse_kl",
    "oscillation_growth",
    "swing",
    "stall_evals",
)


@dataclass
class DataOptions:
    """Where the real images come from and how they are read."""

    data: str = field(
        default="mnist-mini",
        metadata={
            "help": "mnist, fashion-mnist, kmnist, cifar10, cifar100, digits, mnist-mini, "
            "or a folder of images"
        },
    )
    data_root: str | None = field(
        default=None,
        metadata={
            "help": "where dataset files are looked for and downloaded to, one sub-folder per "
            "dataset (default: $GANFORGE_DATA or ~/.cache/ganforge/datasets; then "
            "/usr/share/datasets)"
        },
    )
    data_cache: str = field(
        default="auto",
        metadata={
            "help": "where decoded images live: device (one uint8 tensor on the training "
            "device), cpu, stream (folders decoded batch by batch by --data-workers), auto "
            "(device, or stream for folders over 2 GiB decoded)"
        },
    )
    data_workers: int = field(
        default=2, metadata={"help": "processes decoding a streamed folder (0: the main one)"}
    )
    hflip: bool = field(
        default=False,
        metadata={"help": "mirror half the real images each epoch (seeded, resume-exact)"},
    )
    strict: bool = field(
        default=False,
        metadata={"help": "stop at a corrupt or non-image file instead of skipping it"},
    )
    trust_pickle: bool = field(
        default=False,
        metadata={"help": "allow reading pickled files (CIFAR's python version): runs their code"},
    )
    resolution: int | None = field(
        default=None, metadata={"help": "image size in pixels (default: the dataset's own)"}
    )
    channels: int | None = field(
        default=None, metadata={"help": "1 (grayscale) or 3 (RGB) (default: the dataset's own)"}
    )
    point_dims: int = field(
        default=0,
        metadata={
            "help": "the dimension of point data (ring8, a CSV of points), recorded from the "
            "data; 0: images",
            "cli": False,
        },
    )

    def check(self) -> None:
        if self.point_dims:
            check_in_range(
                self, ("point_dims",), 1, bounds.MAX_POINT_DIMS, f"[1, {bounds.MAX_POINT_DIMS}]"
            )
            for name in ("resolution", "channels"):
                if getattr(self, name) is not None:
                    raise option_error(
                        name, f"point data ('{self.data}') has no image size or channels"
                    )
            if self.hflip:
                raise option_error("hflip", f"point data ('{self.data}') has no images to mirror")
        if self.channels is not None and self.channels not in (1, 3):
            raise option_error("channels", f"must be 1 or 3, got {self.channels}")
        if self.resolution is not None and self.resolution < 4:
            raise option_error("resolution", f"must be at least 4 pixels, got {self.resolution}")
        check_choice(self, "data_cache", DATA_CACHES)
        check_at_least(self, ("data_workers",), 0, "must be 0 or more")


@dataclass
class ModelSection:
    """Which model, and the sizes every model shares (a model's own options: model_options)."""

    model: str = field(default="dcgan", metadata={"help": "model family: see `ganforge models`"})
    plugin: str | None = field(
        default=None,
        metadata={
            "help": "a Python module to import first, whose register_model lines add models "
            "(recorded in config.json: sample, eval, report and the app import it again)"
        },
    )
    z_dim: int = field(default=100, metadata={"help": "size of the Gaussian noise vector"})
    width: int = field(default=64, metadata={"help": "base channel width of G and D"})
    num_classes: int = field(
        default=0,
        metadata={"help": "classes of a class-conditional model (0: the dataset's own)"},
    )
    class_names: list[str] = field(
        default_factory=list,
        metadata={"help": "the class names a conditional run was trained on", "cli": False},
    )

    def check(self) -> None:
        check_at_least(self, ("z_dim", "width"), 1)
        check_at_least(self, ("num_classes",), 0, "must be 0 (the dataset's) or more")
        if not all(isinstance(name, str) for name in self.class_names):
            raise option_error("class_names", "must be a list of strings")
        if self.plugin is not None and not all(
            part.isidentifier() for part in self.plugin.split(".")
        ):
            raise option_error(
                "plugin", f"'{self.plugin}' is not a module name (like my_models or pkg.gans)"
            )


@dataclass
class OptimisationOptions:
    """How the networks learn: optimiser, learning rates, the objective's basic choices."""

    batch_size: int = field(default=64, metadata={"help": "images per batch"})
    # G learns twice as fast as D by default: on mnist-mini at 1,500 steps this cut the
    # classifier-feature FID by about a third against 2e-4 (benchmarks/compare_tutorial.py).
    lr_g: float = field(default=4e-4, metadata={"help": "generator learning rate"})
    lr_d: float = field(default=2e-4, metadata={"help": "discriminator learning rate"})
    beta1: float = field(default=0.5, metadata={"help": "Adam beta1 (RMSprop/SGD: momentum)"})
    beta2: float = field(default=0.999, metadata={"help": "Adam beta2"})
    optimizer: str = field(default="adam", metadata={"help": "adam, rmsprop or sgd"})
    d_steps: int = field(default=1, metadata={"help": "discriminator updates per G update"})
    g_loss: str = field(
        default="non-saturating",
        metadata={"help": "non-saturating (max log D(G(z))) or saturating (min log(1-D(G(z))))"},
    )
    label_smoothing: float = field(
        default=0.1, metadata={"help": "one-sided: real label = 1 - this (0 disables)"}
    )
    # The average's decay at step t is min(this, (1 + t) / (10 + t)) (training/ema.py): 0.999
    # is reached only at step 8,990, so at the demo's 1,500 steps every decay from 0.995 up is
    # the same average (measured: benchmarks/modern_baseline.py, ema-* variants).
    ema_decay: float = field(
        default=0.999,
        metadata={
            "help": "EMA of G's weights used for sampling (0 disables); its decay ramps up as "
            "(1+t)/(10+t) at step t, reaching 0.999 at step 8,990 (before that it weighs "
            "step s about as (s/t)^8: the last fifth or so of the run)"
        },
    )
    lr_decay: str = field(
        default="none",
        metadata={
            "help": "learning rates fall over --steps after the warm-up: none, linear or cosine "
            "(both towards 0 at the last step)"
        },
    )
    lr_warmup: int = field(
        default=0,
        metadata={"help": "steps over which learning rates rise linearly from 0 (0: none)"},
    )
    accumulate: int = field(
        default=1,
        metadata={
            "help": "gradient accumulation: each update sums the gradients of this many "
            "batches of --batch-size, the update of one N times larger batch in the memory "
            "of one (batchnorm still normalises each batch alone)"
        },
    )
    reuse_fakes: bool = field(
        default=False,
        metadata={
            "help": "G's phase learns from the fakes D's last step was shown (their noise) "
            "instead of drawing new ones: one forward pass of G fewer per iteration, and "
            "another run"
        },
    )

    def check(self) -> None:
        check_at_least(self, ("batch_size", "d_steps"), 1)
        check_in_range(self, ("accumulate",), 1, MAX_ACCUMULATE, f"1 (off) to {MAX_ACCUMULATE}")
        check_at_least(self, ("lr_warmup",), 0, "must be 0 (none) or more")
        check_choice(self, "lr_decay", LR_DECAYS)
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not 0 < value <= MAX_LEARNING_RATE:  # beyond it, torch's float32 steps overflow
                raise option_error(
                    name,
                    f"must be a positive learning rate, at most {MAX_LEARNING_RATE:g}, got {value}",
                )
        for name in ("beta1", "beta2", "ema_decay"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise option_error(name, f"must be in [0, 1), got {value}")
        if not 0 <= self.label_smoothing < 0.5:
            raise option_error(
                "label_smoothing", f"must be in [0, 0.5), got {self.label_smoothing}"
            )
        check_choice(self, "optimizer", OPTIMIZERS)
        check_choice(self, "g_loss", G_LOSSES)


@dataclass
class LoopOptions:
    """How long the loop runs, what it writes and how often."""

    steps: int = field(default=1500, metadata={"help": "total generator updates"})
    seed: int = field(default=0, metadata={"help": "random seed (same seed, same run)"})
    out: str | None = field(
        default=None, metadata={"help": "run folder (default: runs/MODEL-DATA-TIME)"}
    )
    checkpoint_every: int = field(default=500, metadata={"help": "steps between checkpoints"})
    checkpoint_minutes: float = field(
        default=0.0,
        metadata={"help": "also checkpoint when this many minutes passed since the last (0: off)"},
    )
    keep_checkpoints: int = field(default=3, metadata={"help": "how many checkpoints to keep"})
    sample_every: int = field(default=250, metadata={"help": "steps between sample grids"})
    log_every: int = field(default=50, metadata={"help": "steps between metrics.jsonl records"})
    n_grid: int = field(default=64, metadata={"help": "images in each progress grid"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda[:N]"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    tensorboard: bool = field(
        default=False,
        metadata={
            "help": "also write TensorBoard files to RUN/tensorboard: the records' numbers, "
            "sample grids, weight and gradient histograms (pip install 'ganforge[tensorboard]')"
        },
    )

    def check(self) -> None:
        check_at_least(
            self,
            ("steps", "checkpoint_every", "keep_checkpoints", "sample_every", "log_every"),
            1,
        )
        check_at_least(self, ("n_grid",), 1)
        if not 0 <= self.checkpoint_minutes < float("inf"):
            raise option_error(
                "checkpoint_minutes",
                f"must be 0 (off) or a positive number, got {self.checkpoint_minutes}",
            )
        bounds.check_seed("--seed", self.seed)


@dataclass
class EvaluationOptions:
    """Measuring the generator during training: best checkpoint and early stop."""

    eval_every: int = field(
        default=0,
        metadata={
            "help": "steps between evaluations of --eval-metric; keeps "
            "checkpoints/best.safetensors (0: off)"
        },
    )
    eval_metric: str = field(
        default="fid",
        metadata={
            "help": "what --eval-every measures: "
            + ", ".join(eval_metric_names())
            + " (a class-conditional model's class scores; a translator's l1, psnr, ssim)"
        },
    )
    eval_n: int = field(default=2000, metadata={"help": "samples per in-training evaluation"})
    early_stop_patience: int = field(
        default=0,
        metadata={"help": "stop after this many evaluations without improvement (0: never)"},
    )
    extractor: str | None = field(
        default=None,
        metadata={
            "help": "features for --eval-every: inception, mnist or a train-extractor file "
            "(default: mnist for grayscale data, inception for colour)"
        },
    )
    inception_weights: str | None = field(
        default=None,
        metadata={"help": "Inception-v3 FID weights file (see docs/reference/metrics)"},
    )

    def check(self) -> None:
        check_choice(self, "eval_metric", EVAL_METRICS)
        check_at_least(self, ("eval_every", "early_stop_patience"), 0, "must be 0 (off) or more")
        if self.eval_n < 2:
            raise option_error("eval_n", f"must be at least 2, got {self.eval_n}")
        if self.early_stop_patience and not self.eval_every:
            raise option_error("early_stop_patience", "needs --eval-every N to measure progress")


@dataclass
class RemedyOptions:
    """The remedies of docs/reference/remedies; all off by default, any combination allowed."""

    loss: str = field(
        default="bce",
        metadata={
            "help": "bce, hinge, wasserstein, least-squares, relativistic (RpGAN: each real "
            "paired with a fake) or relativistic-average (RaGAN) (--g-loss and "
            "--label-smoothing apply to bce; smoothing to least-squares too)"
        },
    )
    gp: float = field(
        default=0.0,
        metadata={"help": "WGAN-GP gradient penalty weight on real/fake interpolates (0: off)"},
    )
    r1: float = field(
        default=0.0,
        metadata={
            "help": "R1 penalty weight gamma on real images: adds gamma/2 E|grad D|^2 (0: off)"
        },
    )
    r2: float = field(
        default=0.0,
        metadata={
            "help": "R2 penalty weight gamma on fake images: adds gamma/2 E|grad D|^2 (0: off; "
            "R3GAN uses it with --r1 and --loss relativistic)"
        },
    )
    reg_every: int = field(
        default=1,
        metadata={
            "help": "lazy regularisation (StyleGAN2): --gp, --r1 and --r2 only every N "
            "iterations, weighted by N (1: every iteration; 16 saves most of their cost)"
        },
    )
    spectral_norm: bool = field(
        default=False,
        metadata={"help": "spectrally normalise D's layers (and drop D's batchnorm)"},
    )
    instance_noise: float = field(
        default=0.0,
        metadata={
            "help": "std of Gaussian noise on D's inputs, annealed linearly to 0 over --steps "
            "(0: off)"
        },
    )
    diffaugment: str = field(
        default="",
        metadata={
            "help": "differentiable augmentations of D's inputs, real and fake: any of "
            "color,translation,cutout (empty: off)"
        },
    )
    pack: int = field(
        default=1,
        metadata={
            "help": "PacGAN: D judges this many samples at once, concatenated, all real or "
            "all fake (1: off; --batch-size must be a multiple)"
        },
    )
    feature_matching: bool = field(
        default=False,
        metadata={
            "help": "Salimans et al. 2016: G matches the mean of D's last hidden features on "
            "real data instead of maximising D's verdict (mlp, dcgan, acgan)"
        },
    )
    minibatch_std: bool = field(
        default=False,
        metadata={
            "help": "ProGAN's minibatch standard deviation: D sees how varied each group of 4 "
            "samples is (a collapsed G's are not)"
        },
    )
    unroll: int = field(
        default=0,
        metadata={
            "help": "Unrolled GAN (Metz et al. 2017): G's loss is taken against D after this "
            "many more of D's own optimiser steps on the batch, differentiated through (0: off)"
        },
    )
    reg_decay: str = field(
        default="none",
        metadata={
            "help": "the weights of --gp, --r1 and --r2 over --steps: none (constant) or "
            "cosine, down to --reg-final of them at the last step (R3GAN's schedule)"
        },
    )
    reg_final: float = field(
        default=0.1,
        metadata={"help": "--reg-decay: the share of the penalties' weights left at the end"},
    )
    clip_weights: float = field(
        default=0.0,
        metadata={
            "help": "the original WGAN (Arjovsky et al. 2017): D's weights clipped to [-C, C] "
            "after each of its steps; with --loss wasserstein (the paper: C 0.01, "
            "--optimizer rmsprop, lr 5e-5, --d-steps 5) (0: off)"
        },
    )
    replay: int = field(
        default=0,
        metadata={
            "help": "experience replay: a pool of this many earlier fakes; half of the fakes D "
            "sees each step come from it, so D keeps rejecting what G made before (0: off)"
        },
    )
    ada: float = field(
        default=0.0,
        metadata={
            "help": "ADA (Karras et al. 2020): augment D's inputs with a probability p that "
            "rises while more than this share of D's outputs on reals say real, and falls "
            "otherwise (the paper's 0.6; 0: off)"
        },
    )
    ada_kimg: float = field(
        default=100.0,
        metadata={
            "help": "--ada: thousands of real images over which p can move from 0 to 1 (the "
            "paper's 500 is for runs of millions of images)"
        },
    )

    def check(self) -> None:
        check_choice(self, "loss", LOSSES)
        for name in ("gp", "r1", "r2", "instance_noise", "clip_weights"):
            if not getattr(self, name) >= 0:  # NaN too
                raise option_error(name, f"must be >= 0 (0: off), got {getattr(self, name)}")
        check_in_range(self, ("reg_every",), 1, MAX_REG_EVERY, f"1 (every step) to {MAX_REG_EVERY}")
        check_in_range(self, ("replay",), 0, MAX_REPLAY, f"0 (off) to {MAX_REPLAY}")
        if not 0 <= self.ada < 1:
            raise option_error("ada", f"must be in [0, 1) (0: off), got {self.ada}")
        if not 0 < self.ada_kimg < float("inf"):
            raise option_error("ada_kimg", f"must be a positive number, got {self.ada_kimg}")
        if self.ada_kimg != RemedyOptions.ada_kimg and not self.ada:
            raise option_error("ada_kimg", "sets the speed of --ada: give --ada TARGET too")
        penalised = self.gp or self.r1 or self.r2
        if self.reg_every > 1 and not penalised:
            raise option_error("reg_every", "spaces out --gp, --r1 and --r2: none of them is on")
        check_choice(self, "reg_decay", REG_DECAYS)
        if self.reg_decay != "none" and not penalised:
            raise option_error("reg_decay", "lowers --gp, --r1 and --r2: none of them is on")
        check_in_range(self, ("reg_final",), 0, 1, "[0, 1]")
        if self.reg_final != RemedyOptions.reg_final and self.reg_decay == "none":
            raise option_error("reg_final", "is where --reg-decay ends: give --reg-decay cosine")
        if self.clip_weights and self.loss != "wasserstein":
            raise option_error(
                "clip_weights",
                f"clips a Wasserstein critic: give --loss wasserstein, not {self.loss}",
            )
        self.diffaugment = ",".join(diffaugment_policies(self.diffaugment))
        check_in_range(self, ("pack",), 1, MAX_PACK, f"1 (off) to {MAX_PACK}")
        check_in_range(self, ("unroll",), 0, MAX_UNROLL, f"0 (off) to {MAX_UNROLL}")
        if self.unroll and self.feature_matching:
            raise option_error(
                "unroll", "and --feature-matching both change G's objective: choose one"
            )


@dataclass
class DoctorOptions:
    """The doctor (docs/reference/diagnosis): signals, detectors, events.jsonl, NaN rollback."""

    doctor: bool = field(
        default=True,
        metadata={
            "help": "watch training: weight norms and sample diversity in each record, "
            "named problems in events.jsonl, rollback after a NaN step"
        },
    )
    diagnose_layers: bool = field(
        default=False,
        metadata={"help": "log the gradient norm of every parameter tensor in each record"},
    )
    nan_lr_factor: float = field(
        default=0.5,
        metadata={
            "help": "after a NaN/infinite step, roll back and multiply both learning rates by this"
        },
    )
    max_rollbacks: int = field(
        default=3, metadata={"help": "stop with an error after this many NaN rollbacks"}
    )
    doctor_warmup: int | None = field(
        default=None,
        metadata={
            "help": "steps before detectors judge, early training being wild (default: 500, "
            "or a fifth of --steps if fewer, so a short run is diagnosed too)"
        },
    )
    doctor_patience: int = field(
        default=5,
        metadata={"help": "records in a row a d/g-overpowering or mode-collapse sign must hold"},
    )
    doctor_repeat: int = field(
        default=10, metadata={"help": "records between repeats of an event that persists"}
    )
    doctor_window: int = field(
        default=20,
        metadata={"help": "records in running medians and in the oscillation window"},
    )
    doctor_explode_factor: float = field(
        default=20.0,
        metadata={
            "help": "exploding: a gradient norm over this x its running median, or a weight "
            "norm over this x its initial one"
        },
    )
    doctor_vanish_factor: float = field(
        default=0.05, metadata={"help": "vanishing: G's gradient norm under this x its median"}
    )
    doctor_vanish_accuracy: float = field(
        default=0.99, metadata={"help": "vanishing: ...while D's accuracy is at least this"}
    )
    doctor_d_accuracy: float = field(
        default=0.98, metadata={"help": "d_overpowering: D's accuracy at least this"}
    )
    doctor_g_accuracy: float = field(
        default=0.5, metadata={"help": "g_overpowering: D's accuracy at most this..."}
    )
    doctor_g_d_fake: float = field(
        default=0.6, metadata={"help": "g_overpowering: ...and mean D(G(z)) at least this"}
    )
    doctor_diversity: float = field(
        default=0.5,
        metadata={"help": "mode_collapse: sample diversity under this x the real images'"},
    )
    doctor_collapse_kl: float = field(
        default=0.5,
        metadata={"help": "mode_collapse: evaluated class KL to uniform (nats) at least this"},
    )
    doctor_oscillation_growth: float = field(
        default=2.0,
        metadata={"help": "oscillation: loss swings this x wider than half a window ago..."},
    )
    doctor_swing: float = field(
        default=0.15, metadata={"help": "oscillation: ...and at least this x the loss itself"}
    )
    doctor_stall_evals: int = field(
        default=5, metadata={"help": "stalled: evaluations without improvement"}
    )

    def check(self) -> None:
        check_at_least(self, ("doctor_patience", "doctor_repeat", "doctor_stall_evals"), 1)
        check_at_least(self, ("max_rollbacks",), 0, "must be 0 or more")
        if self.doctor_warmup is not None:
            check_at_least(self, ("doctor_warmup",), 0, "must be 0 or more")
        if self.doctor_window < 6:
            raise option_error("doctor_window", f"must be at least 6, got {self.doctor_window}")
        if not 0 < self.nan_lr_factor < 1:
            raise option_error("nan_lr_factor", f"must be in (0, 1), got {self.nan_lr_factor}")
        accuracies = ("doctor_vanish_accuracy", "doctor_d_accuracy", "doctor_g_accuracy")
        check_in_range(self, accuracies, 0, 1, "[0, 1]")
        shares = ("doctor_g_d_fake", "doctor_diversity", "doctor_vanish_factor")
        check_in_range(self, shares, 0, 1, "[0, 1]")
        for name in ("doctor_explode_factor", "doctor_oscillation_growth"):
            if not getattr(self, name) > 1:
                raise option_error(name, f"must be more than 1, got {getattr(self, name)}")
        for name in ("doctor_collapse_kl", "doctor_swing"):
            if not getattr(self, name) >= 0:
                raise option_error(name, f"must be 0 or more, got {getattr(self, name)}")


@dataclass
class SpeedOptions:
    """How fast, not what (docs/reference/speed)."""

    compile: bool = field(
        default=False,
        metadata={"help": "torch.compile the networks (slow first steps, faster ones after)"},
    )
    precision: str = field(
        default="fp32",
        metadata={
            "help": "fp32, bf16 or fp16: autocast mixed precision (fp16 with a gradient scaler; "
            "GPU only; bf16 also runs on CPU)"
        },
    )
    ddp: bool = field(
        default=False,
        metadata={
            "help": "data-parallel training in --nproc-per-node local processes "
            "(DistributedDataParallel: NCCL on GPUs, gloo on CPU)"
        },
    )
    nproc_per_node: int = field(
        default=0,
        metadata={"help": "processes for --ddp (0: one per GPU, or 2 on CPU)"},
    )
    sync_bn: bool = field(
        default=False,
        metadata={"help": "--ddp/torchrun: batchnorm statistics over the global batch (GPU)"},
    )

    def check(self) -> None:
        check_choice(self, "precision", PRECISIONS)
        check_at_least(self, ("nproc_per_node",), 0, "must be 0 (auto) or more")


# (title, section) in the order of `ganforge train --help`
SECTIONS = (
    ("data", DataOptions),
    ("model", ModelSection),
    ("optimisation", OptimisationOptions),
    ("loop", LoopOptions),
    ("evaluation", EvaluationOptions),
    ("remedies", RemedyOptions),
    ("doctor", DoctorOptions),
    ("speed", SpeedOptions),
)


def diffaugment_policies(text: str) -> tuple[str, ...]:
    """The policies named in a --diffaugment value ("color, translation" -> ("color",
    "translation")), in the given order; empty for "" (off). Unknown or repeated names are
    errors naming the flag."""
    policies = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in policies:
        if name not in DIFFAUGMENT_POLICIES:
            raise option_error(
                "diffaugment", f"unknown policy '{name}' ({', '.join(DIFFAUGMENT_POLICIES)})"
            )
    if len(set(policies)) < len(policies):
        raise option_error("diffaugment", f"a policy is named twice in '{text}'")
    return policies

"""The run configuration: one dataclass, validated with errors that name the offending option.

A config is plain data (JSON/TOML in, JSON out); it is never executed and never pickled.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ganforge import bounds
from ganforge.errors import GanforgeError, brief

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

OPTIMIZERS = ("adam", "rmsprop", "sgd")
G_LOSSES = ("non-saturating", "saturating")
LOSSES = ("bce", "hinge", "wasserstein", "least-squares")
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
DATA_CACHES = ("auto", "device", "cpu", "stream")
PRECISIONS = ("fp32", "bf16", "fp16")
CONDITIONINGS = ("concat", "projection")  # how cgan's D takes the label
NORMS = ("batch", "instance")  # pix2pix's normalisation layers
RECONSTRUCTIONS = ("bce", "mse")  # the VAE's reconstruction loss
MAX_LEARNING_RATE = 1000.0  # no GAN trains near it; ~1e38 overflows float32 mid-step
EVAL_METRICS = (
    "fid",
    "kid",
    "precision",
    "recall",
    "density",
    "coverage",
    "kl_to_uniform",
    "is",
    "class_accuracy",
    "intra_fid",
    "l1",  # a translator's (pix2pix): on held-out pairs
    "psnr",
    "ssim",
)
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

# Options that may change between the first run and a resume without changing the training
# trajectory itself (so they stay out of the config hash).
RESUMABLE_OPTIONS = frozenset(
    {
        "steps",
        "checkpoint_every",
        "checkpoint_minutes",
        "keep_checkpoints",
        "sample_every",
        "log_every",
        "device",
        "progress",
        # where decoded images are kept and how many processes decode them: the batches are
        # the same images either way (data/pipeline.py)
        "data_cache",
        "data_workers",
        # evaluation reads the generator and never touches the training RNG (evaluate.py);
        # a changed metric or extractor restarts the best-checkpoint bookkeeping
        "eval_every",
        "eval_metric",
        "eval_n",
        "early_stop_patience",
        "extractor",
        "inception_weights",
        # the doctor reads records and never touches the training RNG (training/diagnostics.py);
        # only a run that would have diverged goes another way with it
        "doctor",
        "diagnose_layers",
        "max_rollbacks",
        # TensorBoard files are one more view of the records (training/tensorboard_log.py)
        "tensorboard",
        *(f"doctor_{name}" for name in DOCTOR_THRESHOLDS),
        # how fast, not what: compiled networks, mixed precision and data-parallel processes
        # compute the same steps to float rounding (training/fast_paths.py, distributed.py)
        "compile",
        "precision",
        "ddp",
        "nproc_per_node",
    }
)
# ...and the run folder's own path, which may move, does not change the trajectory either.
_UNHASHED_OPTIONS = RESUMABLE_OPTIONS | {"out"}
# The options that runs have hashed from the start, always, whatever their value. Any option
# added since is hashed only when it differs from its default, so that adding an option never
# changes the hash of an existing run (whose checkpoints would then refuse to resume).
_ALWAYS_HASHED = frozenset(
    {
        "model",
        "data",
        "data_root",
        "hflip",
        "strict",
        "trust_pickle",
        "resolution",
        "channels",
        "batch_size",
        "seed",
        "lr_g",
        "lr_d",
        "beta1",
        "beta2",
        "optimizer",
        "d_steps",
        "g_loss",
        "z_dim",
        "width",
        "label_smoothing",
        "ema_decay",
        "n_grid",
    }
)


@dataclass
class TrainConfig:
    """Everything that defines a training run. Every field has a default that works."""

    model: str = field(default="dcgan", metadata={"help": "model family: see `ganforge models`"})
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
    steps: int = field(default=1500, metadata={"help": "total generator updates"})
    batch_size: int = field(default=64, metadata={"help": "images per batch"})
    seed: int = field(default=0, metadata={"help": "random seed (same seed, same run)"})
    out: str | None = field(
        default=None, metadata={"help": "run folder (default: runs/MODEL-DATA-TIME)"}
    )
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
    z_dim: int = field(default=100, metadata={"help": "size of the Gaussian noise vector"})
    width: int = field(default=64, metadata={"help": "base channel width of G and D"})
    label_smoothing: float = field(
        default=0.1, metadata={"help": "one-sided: real label = 1 - this (0 disables)"}
    )
    ema_decay: float = field(
        default=0.999,
        metadata={"help": "EMA of G's weights used for sampling (0 disables)"},
    )
    # ---- conditional models (README: Conditional models) ----
    num_classes: int = field(
        default=0,
        metadata={"help": "classes of a class-conditional model (0: the dataset's own)"},
    )
    class_names: list[str] = field(
        default_factory=list,
        metadata={"help": "the class names a conditional run was trained on", "cli": False},
    )
    cond: str = field(
        default="concat",
        metadata={
            "help": "cgan: how D sees the label: concat (label maps joined to its input) or "
            "projection (Miyato & Koyama 2018)"
        },
    )
    aux_weight: float = field(
        default=1.0, metadata={"help": "acgan: weight of the auxiliary classification loss"}
    )
    aux_fakes: bool = field(
        default=False,
        metadata={
            "help": "acgan: train D's class head on fakes too (Odena et al.'s original; by "
            "default real images only, so the head cannot adapt to G's mistakes)"
        },
    )
    l1_weight: float = field(
        default=100.0, metadata={"help": "pix2pix: weight lambda of the L1 loss to the target"}
    )
    norm: str = field(
        default="batch", metadata={"help": "pix2pix: batch or instance normalisation"}
    )
    recon: str = field(
        default="bce",
        metadata={
            "help": "vae: reconstruction loss, bce (pixels as Bernoulli probabilities in [0, 1]) "
            "or mse (squared error in [0, 1]); summed over pixels"
        },
    )
    beta: float = field(
        default=1.0,
        metadata={"help": "vae: weight of the KL term (beta-VAE; not Adam's --beta1/--beta2)"},
    )
    # ---- remedies (README: Remedies); all off by default, any combination allowed ----
    loss: str = field(
        default="bce",
        metadata={
            "help": "bce, hinge, wasserstein or least-squares (--g-loss and --label-smoothing "
            "apply to bce; smoothing to least-squares too)"
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
    checkpoint_every: int = field(default=500, metadata={"help": "steps between checkpoints"})
    checkpoint_minutes: float = field(
        default=0.0,
        metadata={"help": "also checkpoint when this many minutes passed since the last (0: off)"},
    )
    keep_checkpoints: int = field(default=3, metadata={"help": "how many checkpoints to keep"})
    sample_every: int = field(default=250, metadata={"help": "steps between sample grids"})
    log_every: int = field(default=50, metadata={"help": "steps between metrics.jsonl records"})
    n_grid: int = field(default=64, metadata={"help": "images in each progress grid"})
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
            "help": "what --eval-every measures: fid, kid, precision, recall, density, "
            "coverage, kl_to_uniform (mode collapse) or is; pix2pix: l1, psnr or ssim"
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
        default=None, metadata={"help": "Inception-v3 FID weights file (see README: Metrics)"}
    )
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda[:N]"})
    # ---- speed and scale (README: Speed and scale) ----
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
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    tensorboard: bool = field(
        default=False,
        metadata={
            "help": "also write TensorBoard files to RUN/tensorboard: the records' numbers, "
            "sample grids, weight and gradient histograms (pip install 'ganforge[tensorboard]')"
        },
    )
    # ---- the doctor (README: Diagnosis): signals, detectors, events.jsonl, NaN rollback ----
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
    doctor_warmup: int = field(
        default=500, metadata={"help": "steps before detectors judge (early training is wild)"}
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

    # ---- conversion ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping; keys may use dashes or underscores. Unknown keys are errors."""
        config = cls(**normalise_keys(values, source))
        config.validate()
        return config

    def replace(self, **changes: Any) -> TrainConfig:
        config = dataclasses.replace(self, **changes)
        config.validate()
        return config

    def trajectory_hash(self) -> str:
        """Hash of the options that decide the training trajectory (not steps, paths, logging).
        Options added after the first release count only when they differ from their default."""
        defaults = TrainConfig()
        values = {
            k: v
            for k, v in self.to_dict().items()
            if k not in _UNHASHED_OPTIONS and (k in _ALWAYS_HASHED or v != getattr(defaults, k))
        }
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ---- validation ---------------------------------------------------------------
    def validate(self) -> None:
        """Raise GanforgeError naming the first impossible option."""
        _check_types(self)
        positive_ints = (
            "steps",
            "batch_size",
            "d_steps",
            "z_dim",
            "width",
            "checkpoint_every",
            "keep_checkpoints",
            "sample_every",
            "log_every",
            "n_grid",
        )
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise _option_error(name, f"must be at least 1, got {getattr(self, name)}")
        self._check_bounds()
        if not 0 <= self.checkpoint_minutes < float("inf"):
            raise _option_error(
                "checkpoint_minutes",
                f"must be 0 (off) or a positive number, got {self.checkpoint_minutes}",
            )
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not 0 < value <= MAX_LEARNING_RATE:  # beyond it, torch's float32 steps overflow
                raise _option_error(
                    name,
                    f"must be a positive learning rate, at most {MAX_LEARNING_RATE:g}, got {value}",
                )
        for name in ("beta1", "beta2", "ema_decay"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise _option_error(name, f"must be in [0, 1), got {value}")
        if not 0 <= self.label_smoothing < 0.5:
            raise _option_error(
                "label_smoothing", f"must be in [0, 0.5), got {self.label_smoothing}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise _option_error(
                "optimizer", f"'{self.optimizer}' is not one of {', '.join(OPTIMIZERS)}"
            )
        if self.g_loss not in G_LOSSES:
            raise _option_error("g_loss", f"'{self.g_loss}' is not one of {', '.join(G_LOSSES)}")
        if self.loss not in LOSSES:
            raise _option_error("loss", f"'{self.loss}' is not one of {', '.join(LOSSES)}")
        if self.g_loss == "saturating" and self.loss != "bce":
            raise _option_error(
                "g_loss", f"'saturating' applies to --loss bce only, not --loss {self.loss}"
            )
        for name in ("gp", "r1", "instance_noise"):
            if getattr(self, name) < 0:
                raise _option_error(name, f"must be >= 0 (0: off), got {getattr(self, name)}")
        self.diffaugment = ",".join(diffaugment_policies(self.diffaugment))
        if self.num_classes < 0:
            raise _option_error(
                "num_classes", f"must be 0 (the dataset's) or more, got {self.num_classes}"
            )
        if not all(isinstance(name, str) for name in self.class_names):
            raise _option_error("class_names", "must be a list of strings")
        if self.cond not in CONDITIONINGS:
            raise _option_error("cond", f"'{self.cond}' is not one of {', '.join(CONDITIONINGS)}")
        if self.norm not in NORMS:
            raise _option_error("norm", f"'{self.norm}' is not one of {', '.join(NORMS)}")
        if self.recon not in RECONSTRUCTIONS:
            raise _option_error(
                "recon", f"'{self.recon}' is not one of {', '.join(RECONSTRUCTIONS)}"
            )
        for name in ("aux_weight", "l1_weight", "beta"):
            if getattr(self, name) < 0:
                raise _option_error(name, f"must be >= 0, got {getattr(self, name)}")
        if self.channels is not None and self.channels not in (1, 3):
            raise _option_error("channels", f"must be 1 or 3, got {self.channels}")
        if self.resolution is not None and self.resolution < 4:
            raise _option_error("resolution", f"must be at least 4 pixels, got {self.resolution}")
        if self.data_cache not in DATA_CACHES:
            raise _option_error(
                "data_cache", f"'{self.data_cache}' is not one of {', '.join(DATA_CACHES)}"
            )
        if self.eval_metric not in EVAL_METRICS:
            raise _option_error(
                "eval_metric", f"'{self.eval_metric}' is not one of {', '.join(EVAL_METRICS)}"
            )
        for name in ("eval_every", "early_stop_patience"):
            if getattr(self, name) < 0:
                raise _option_error(name, f"must be 0 (off) or more, got {getattr(self, name)}")
        if self.eval_n < 2:
            raise _option_error("eval_n", f"must be at least 2, got {self.eval_n}")
        if self.early_stop_patience and not self.eval_every:
            raise _option_error("early_stop_patience", "needs --eval-every N to measure progress")
        if self.precision not in PRECISIONS:
            raise _option_error(
                "precision", f"'{self.precision}' is not one of {', '.join(PRECISIONS)}"
            )
        if self.nproc_per_node < 0:
            raise _option_error(
                "nproc_per_node", f"must be 0 (auto) or more, got {self.nproc_per_node}"
            )
        if self.data_workers < 0:
            raise _option_error("data_workers", f"must be 0 or more, got {self.data_workers}")
        bounds.check_seed("--seed", self.seed)
        for name in ("doctor_patience", "doctor_repeat", "doctor_stall_evals"):
            if getattr(self, name) < 1:
                raise _option_error(name, f"must be at least 1, got {getattr(self, name)}")
        for name in ("doctor_warmup", "max_rollbacks"):
            if getattr(self, name) < 0:
                raise _option_error(name, f"must be 0 or more, got {getattr(self, name)}")
        if self.doctor_window < 6:
            raise _option_error("doctor_window", f"must be at least 6, got {self.doctor_window}")
        if not 0 < self.nan_lr_factor < 1:
            raise _option_error("nan_lr_factor", f"must be in (0, 1), got {self.nan_lr_factor}")
        for name in ("doctor_vanish_accuracy", "doctor_d_accuracy", "doctor_g_accuracy"):
            if not 0 <= getattr(self, name) <= 1:
                raise _option_error(name, f"must be in [0, 1], got {getattr(self, name)}")
        for name in ("doctor_g_d_fake", "doctor_diversity", "doctor_vanish_factor"):
            if not 0 <= getattr(self, name) <= 1:
                raise _option_error(name, f"must be in [0, 1], got {getattr(self, name)}")
        for name in ("doctor_explode_factor", "doctor_oscillation_growth"):
            if not getattr(self, name) > 1:
                raise _option_error(name, f"must be more than 1, got {getattr(self, name)}")
        for name in ("doctor_collapse_kl", "doctor_swing"):
            if not getattr(self, name) >= 0:
                raise _option_error(name, f"must be 0 or more, got {getattr(self, name)}")

    def _check_bounds(self) -> None:
        """Absurd sizes (ganforge.bounds), refused before any work: each names its flag."""
        for name, bound in _BOUNDED_OPTIONS:
            value = getattr(self, name)
            if value is not None:
                bounds.check_at_most(flag_name(name), value, bound)
        if self.resolution is not None and self.channels is not None:
            # a progress grid holds n_grid images (a conditional one: a row per class)
            grid = max(self.n_grid, self.num_classes)
            bounds.check_images(
                "--n-grid", grid, self.resolution, self.channels, bounds.MAX_GRID_BYTES
            )
        bounds.check_noise("--eval-n", self.eval_n, self.z_dim)


_BOUNDED_OPTIONS = (
    ("resolution", bounds.MAX_RESOLUTION),
    ("z_dim", bounds.MAX_Z_DIM),
    ("width", bounds.MAX_WIDTH),
    ("num_classes", bounds.MAX_NUM_CLASSES),
    ("d_steps", bounds.MAX_D_STEPS),
    ("n_grid", bounds.MAX_GRID),
    ("eval_n", bounds.MAX_EVAL_SAMPLES),
)


def diffaugment_policies(text: str) -> tuple[str, ...]:
    """The policies named in a --diffaugment value ("color, translation" -> ("color",
    "translation")), in the given order; empty for "" (off). Unknown or repeated names are
    errors naming the flag."""
    policies = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in policies:
        if name not in DIFFAUGMENT_POLICIES:
            raise _option_error(
                "diffaugment", f"unknown policy '{name}' ({', '.join(DIFFAUGMENT_POLICIES)})"
            )
    if len(set(policies)) < len(policies):
        raise _option_error("diffaugment", f"a policy is named twice in '{text}'")
    return policies


def normalise_keys(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Option names with underscores; an unknown name is an error that names `source`."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise GanforgeError(f"{source}: option names must be text, got {brief(key)}")
        name = key.replace("-", "_")
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean '{flag_name(close[0])[2:]}'?" if close else ""
            raise GanforgeError(f"{source}: unknown option '{key}'{hint}")
        clean[name] = value
    return clean


def flag_name(option: str) -> str:
    """The CLI spelling of a config field: lr_g -> --lr-g."""
    return "--" + option.replace("_", "-")


def _option_error(option: str, message: str) -> GanforgeError:
    return GanforgeError(f"{flag_name(option)}: {message}")


def _check_types(config: TrainConfig) -> None:
    """Coerce ints to floats where floats are expected; reject wrong types from config files."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if value is None and "None" in kind:
            continue
        if kind.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 2**1023:
                raise _option_error(f.name, f"{brief(value)} is too large a number")
            setattr(config, f.name, float(value))
        elif kind.startswith("float") and not isinstance(value, float):
            raise _option_error(f.name, f"expected a number, got {brief(value)}")
        elif kind.startswith("float") and not math.isfinite(value):
            raise _option_error(f.name, f"must be a finite number, got {value}")
        elif kind.startswith("int") and (not isinstance(value, int) or isinstance(value, bool)):
            raise _option_error(f.name, f"expected an integer, got {brief(value)}")
        elif kind.startswith("str") and not isinstance(value, str):
            raise _option_error(f.name, f"expected a string, got {brief(value)}")
        elif kind == "bool" and not isinstance(value, bool):
            raise _option_error(f.name, f"expected true or false, got {brief(value)}")
        elif kind.startswith("list") and not isinstance(value, list):
            raise _option_error(f.name, f"expected a list, got {brief(value)}")
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not _is_utf8(text):
                # a path such as b'caf\xe9' from a Latin-1 disk: config.json (UTF-8) cannot
                # hold it, so the run could never finish, resume or be reported
                raise _option_error(
                    f.name, f"{brief(_raw_bytes(text))} is not valid UTF-8 text; rename it"
                )


def _raw_bytes(text: str) -> bytes:
    """The bytes a file name decoded with surrogateescape came from (os.fsencode's)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape, not from bytes
        return text.encode("utf-8", "backslashreplace")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes of a file name
        return False
    return True


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML config file into a mapping (validated later, merged with CLI
    flags). A syntax error names the file and its line."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"--config: no such file '{path}'")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ".yaml", ".yml"):
        raise GanforgeError(f"--config: '{path}' must end in .toml, .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".toml":
            values = tomllib.loads(text)
        elif suffix == ".json":
            values = json.loads(text)
        else:
            values = yaml.load(text, Loader=_ConfigLoader)  # plain data: no tags, no aliases
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise GanforgeError(
            f"--config: cannot parse '{path}' (line {line}): {exc.problem}"
        ) from None
    except (
        tomllib.TOMLDecodeError,
        json.JSONDecodeError,
        yaml.YAMLError,
        UnicodeDecodeError,
        ValueError,
        RecursionError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GanforgeError(f"--config: cannot parse '{path}': {reason}") from None
    if not isinstance(values, dict):
        raise GanforgeError(f"--config: '{path}' must hold a table of options")
    return normalise_keys(values, f"--config '{path}'")


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader (plain data only: no tags that build objects) that also refuses
    aliases: a config has no use for them, and ten lines of nested aliases (a "billion laughs")
    make a value whose every traversal (printing, hashing, JSON) takes forever."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed in a config file",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)

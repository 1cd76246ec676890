"""TrainConfig: every option of a run, in sections (sections.py), plus the model's own options
(model_options.py). Plain data (JSON/TOML/YAML in, flat JSON out); never executed, never
pickled. `trajectory_hash` decides which checkpoints a config may resume."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ganforge import bounds
from ganforge.config.checks import check_types, flag_name, option_error
from ganforge.config.model_options import (
    ModelOptions,
    build_options,
    option_owners,
    options_class,
)
from ganforge.config.sections import (
    DOCTOR_THRESHOLDS,
    SECTIONS,
    DataOptions,
    DoctorOptions,
    EvaluationOptions,
    LoopOptions,
    ModelSection,
    OptimisationOptions,
    RemedyOptions,
    SpeedOptions,
)
from ganforge.errors import GanforgeError, brief

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
class TrainConfig(  # dataclass fields come base-last-first: data, model, ..., speed
    SpeedOptions,
    DoctorOptions,
    RemedyOptions,
    EvaluationOptions,
    LoopOptions,
    OptimisationOptions,
    ModelSection,
    DataOptions,
):
    """Everything that defines a training run. Every field has a default that works.

    The shared options are read flat (`config.lr_g`), whatever their section; the model's own
    options are `config.model_options` (a dataclass of the model's file; None -> its
    defaults)."""

    model_options: ModelOptions | None = field(
        default=None, metadata={"help": "the model's own options", "cli": False}
    )

    def __post_init__(self) -> None:
        if self.model_options is None:
            self.model_options = options_class(self.model)()

    # ---- conversion ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Flat: the shared options, then the model's own (config.json's layout)."""
        values = {f.name: copy.deepcopy(getattr(self, f.name)) for f in _shared_fields()}
        return {**values, **dataclasses.asdict(self.model_options)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping; keys may use dashes or underscores. Unknown keys are errors,
        and so are another model's options (at their defaults they are dropped: a config.json
        written before models had their own options holds them all)."""
        clean = normalise_keys(values, source)
        import_plugin(clean.get("plugin"), source)
        shared = {k: v for k, v in clean.items() if k in _SHARED_NAMES}
        own = {k: v for k, v in clean.items() if k not in _SHARED_NAMES}
        model = shared.get("model", cls.model)
        if not isinstance(model, str):
            raise option_error("model", f"expected a string, got {brief(model)}")
        config = cls(**shared, model_options=build_options(model, own))
        config.validate()
        return config

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` (shared or the model's own options), validated."""
        changes = {name: plain_path(value) for name, value in changes.items()}
        own = {k: v for k, v in changes.items() if k not in _SHARED_NAMES}
        shared = {k: v for k, v in changes.items() if k in _SHARED_NAMES}
        model = shared.get("model", self.model)
        if model != self.model:  # another model: its own options, from `changes` only
            shared["model_options"] = build_options(model, own)
        elif own:
            kept = dataclasses.asdict(self.model_options)
            shared["model_options"] = build_options(model, {**kept, **own})
        config = dataclasses.replace(self, **shared)
        config.validate()
        return config

    def trajectory_hash(self) -> str:
        """Hash of the options that decide the training trajectory (not steps, paths, logging).
        Options added after the first release count only when they differ from their default."""
        defaults = TrainConfig(model=self.model).to_dict()
        values = {
            k: v
            for k, v in self.to_dict().items()
            if k not in _UNHASHED_OPTIONS and (k in _ALWAYS_HASHED or v != defaults.get(k))
        }
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ---- validation ---------------------------------------------------------------
    def validate(self) -> None:
        """Raise GanforgeError naming the first impossible option: each section checks its
        own, the model checks its own options."""
        check_types(self)
        if not isinstance(self.model_options, options_class(self.model)):
            raise option_error("model", f"options of another model given to {self.model}")
        self._check_bounds()
        for _, section in SECTIONS:
            section.check(self)
        if self.g_loss == "saturating" and self.loss != "bce":  # optimisation x remedies
            raise option_error(
                "g_loss", f"'saturating' applies to --loss bce only, not --loss {self.loss}"
            )
        if self.reuse_fakes and self.ddp:  # optimisation x speed
            raise option_error(
                "reuse_fakes",
                "not with --ddp: D's phase draws its fakes outside DistributedDataParallel, "
                "whose gradients would then not be averaged",
            )
        if self.batch_size % self.pack:  # optimisation x remedies
            raise option_error(
                "pack", f"{self.pack} must divide --batch-size {self.batch_size} (D judges packs)"
            )
        self.model_options.validate()

    def _check_bounds(self) -> None:
        """Absurd sizes (ganforge.bounds), refused before any work: each names its flag."""
        for name, bound in _BOUNDED_OPTIONS:
            value = getattr(self, name)
            if isinstance(value, int) and value is not None:
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


def _shared_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrainConfig) if f.name != "model_options"]


_SHARED_NAMES = frozenset(f.name for f in _shared_fields())


def shared_option_names() -> frozenset[str]:
    """The options every model has (not a model's own)."""
    return _SHARED_NAMES


def normalise_keys(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Option names with underscores; an unknown name (neither shared nor any registered
    model's own) is an error that names `source`."""
    known = _SHARED_NAMES | set(option_owners())
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise GanforgeError(f"{source}: option names must be text, got {brief(key)}")
        name = key.replace("-", "_")
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean '{flag_name(close[0])[2:]}'?" if close else ""
            raise GanforgeError(f"{source}: unknown option '{key}'{hint}")
        clean[name] = plain_path(value)
    return clean


def plain_path(value: Any) -> Any:
    """A pathlib.Path (any os.PathLike) given for a path option (out, data, data_root, ...)
    as the text config.json keeps; any other value as it is."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def import_plugin(module: Any, source: str = "--plugin") -> None:
    """Import a user's module of models (`--plugin`, or the name a run's config.json
    recorded), whose register_model lines add them. Only installed modules are imported, by
    name: never a file a run folder brings."""
    if module is None:
        return
    if not isinstance(module, str) or not all(p.isidentifier() for p in module.split(".")):
        raise GanforgeError(f"{source}: --plugin {brief(module)} is not a module name")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise GanforgeError(
            f"{source}: cannot import plugin module '{module}' ({exc}); install it or put it "
            "on PYTHONPATH"
        ) from None

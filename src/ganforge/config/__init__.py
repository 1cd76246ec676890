"""The run configuration: TrainConfig in sections, each model's own options, config files.

A config is plain data (JSON/TOML/YAML in, JSON out); it is never executed and never pickled.
"""

from ganforge.config.checks import check_at_least, check_choice, flag_name, option_error
from ganforge.config.files import load_config_file
from ganforge.config.model_options import ModelOptions, options_class, register_options
from ganforge.config.sections import (
    DATA_CACHES,
    DIFFAUGMENT_POLICIES,
    DOCTOR_THRESHOLDS,
    EVAL_METRICS,
    G_LOSSES,
    LOSSES,
    MAX_LEARNING_RATE,
    OPTIMIZERS,
    PRECISIONS,
    SECTIONS,
    diffaugment_policies,
)
from ganforge.config.train_config import (
    RESUMABLE_OPTIONS,
    TrainConfig,
    import_plugin,
    normalise_keys,
    shared_option_names,
)

__all__ = [
    "DATA_CACHES",
    "DIFFAUGMENT_POLICIES",
    "DOCTOR_THRESHOLDS",
    "EVAL_METRICS",
    "G_LOSSES",
    "LOSSES",
    "MAX_LEARNING_RATE",
    "OPTIMIZERS",
    "PRECISIONS",
    "RESUMABLE_OPTIONS",
    "SECTIONS",
    "ModelOptions",
    "TrainConfig",
    "check_at_least",
    "check_choice",
    "diffaugment_policies",
    "flag_name",
    "import_plugin",
    "load_config_file",
    "normalise_keys",
    "option_error",
    "options_class",
    "register_options",
    "shared_option_names",
]

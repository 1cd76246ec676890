"""A model's own options: a small dataclass in the model's file, registered with the model.

They are options like any other on the command line and in config files (`--l1-weight 50`,
`l1_weight = 50`) and in config.json (flat, next to the shared ones), but only the model that
declares them takes them: `--beta 2 --model dcgan` is an error naming vae. A config.json
written before a model had its own options held every model's at their defaults; those are
read and dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ganforge.config.checks import check_types, flag_name
from ganforge.errors import GanforgeError


@dataclass
class ModelOptions:
    """The options of a model without any of its own; a model's options subclass it, with a
    `help` in each field's metadata (prefixed with the model's name on the CLI) and their
    checks in `check`."""

    def check(self) -> None:
        """Raise GanforgeError naming the first impossible option (via config.checks)."""

    def validate(self) -> None:
        check_types(self)
        self.check()


_OPTIONS: dict[str, type[ModelOptions]] = {}  # model name -> its options


def register_options(model: str, options: type[ModelOptions]) -> None:
    assert dataclasses.is_dataclass(options) and issubclass(options, ModelOptions), options
    _OPTIONS[model] = options


def options_class(model: str) -> type[ModelOptions]:
    """The options dataclass of `model` (ModelOptions itself for a model without any, or not
    registered: the registry reports unknown models)."""
    return _OPTIONS.get(model, ModelOptions)


def option_owners() -> dict[str, list[str]]:
    """Every model option's name -> the models that declare it."""
    owners: dict[str, list[str]] = {}
    for model, options in sorted(_OPTIONS.items()):
        for f in dataclasses.fields(options):
            owners.setdefault(f.name, []).append(model)
    return owners


def option_fields() -> dict[str, tuple[dataclasses.Field, list[str]]]:
    """Every model option's name -> (its field in the first model declaring it, its models):
    what the CLI makes one flag of."""
    fields: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for model, options in sorted(_OPTIONS.items()):
        for f in dataclasses.fields(options):
            first, models = fields.get(f.name, (f, []))
            fields[f.name] = (first, [*models, model])
    return fields


def build_options(model: str, values: dict[str, Any]) -> ModelOptions:
    """`model`'s options from `values` (names with underscores), which may also hold other
    models' options: at their defaults they are dropped (an old config.json held them all);
    set otherwise they are an error naming the models they belong to."""
    cls = options_class(model)
    own = {f.name for f in dataclasses.fields(cls)}
    for name, value in values.items():
        if name in own:
            continue
        models = option_owners().get(name, [])
        defaults = [dataclasses.asdict(_OPTIONS[m]())[name] for m in models]
        if value not in defaults:
            raise GanforgeError(
                f"{flag_name(name)}: an option of {' and '.join(models)}, not of {model}"
            )
    options = cls(**{name: value for name, value in values.items() if name in own})
    options.validate()
    return options

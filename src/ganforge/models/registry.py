"""Models by short, validated names: name -> builder of a ModelFamily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ganforge.bounds import check_parameters
from ganforge.config import ModelOptions, TrainConfig, register_options
from ganforge.errors import GanforgeError
from ganforge.models.family import POINTS, UNCONDITIONAL, Kind, ModelFamily

Builder = Callable[[TrainConfig, int, int], ModelFamily]
_MODELS: dict[str, tuple[Builder, Kind, dict[str, Any]]] = {}
_POINT_MODELS: set[str] = set()  # models that also learn point data (kind POINTS)


def register_model(
    name: str,
    builder: Builder,
    kind: Kind = UNCONDITIONAL,
    defaults: dict[str, Any] | None = None,
    options: type[ModelOptions] = ModelOptions,
    points: bool = False,
) -> None:
    """Register `builder(config, img_resolution, img_channels) -> ModelFamily` under `name`;
    `kind` (models.family.Kind) is what the family's `kind` will be, known before building it
    (whether the data must bring labels or pairs, what the tools can do with it); `defaults`
    are the model's own defaults for shared training options the user did not give; `options`
    is the dataclass of its own options (config.model_options: the builder reads them from
    `config.model_options`). A model that also learns point data (`points`: --data ring8, a
    CSV of points) builds a family of kind POINTS when `config.point_dims` is set."""
    _MODELS[name] = (builder, kind, dict(defaults or {}))
    if points:
        _POINT_MODELS.add(name)
    register_options(name, options)


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_kind(name: str) -> Kind:
    """What model `name` is (its data, whether it is class-conditional, a translator, an
    autoencoder), without building it."""
    _check_known(name)
    return _MODELS[name][1]


def point_models() -> list[str]:
    """The models that learn point data."""
    return sorted(_POINT_MODELS)


def run_kind(config: TrainConfig) -> Kind:
    """What a run of `config` is: its model's kind, or POINTS for a model of point data
    (config.point_dims, recorded from the data)."""
    if config.point_dims:
        _check_known(config.model)
        if config.model not in _POINT_MODELS:
            raise GanforgeError(
                f"--model {config.model} learns images, not points: choose one of "
                f"{', '.join(point_models())} for point data"
            )
        return POINTS
    return model_kind(config.model)


def model_defaults(name: str) -> dict[str, Any]:
    """Training options where this model differs from TrainConfig's defaults
    (docs/reference/models)."""
    _check_known(name)
    return dict(_MODELS[name][2])


def build_model(config: TrainConfig, img_resolution: int, img_channels: int) -> ModelFamily:
    check_model_size(config, img_resolution, img_channels)
    family = _MODELS[config.model][0](config, img_resolution, img_channels)
    assert family.kind == run_kind(config), f"{config.model}: kind {family.kind}"
    return family


def describe_model(config: TrainConfig) -> ModelFamily:
    """The family a run's config builds, on the meta device (shapes only: no memory, no
    random draws): for tools that need to ask it something (its curve panels, its
    networks) and not its weights. The config has its resolution and channels resolved."""
    _check_known(config.model)
    with torch.device("meta"):
        return _MODELS[config.model][0](config, config.resolution, config.channels)


def check_model_size(config: TrainConfig, img_resolution: int, img_channels: int) -> None:
    """Refuse networks beyond bounds.MAX_PARAMETERS before allocating them: they are built
    on the meta device first (shapes only: no memory, no random draws)."""
    _check_known(config.model)
    with torch.device("meta"):
        shapes = _MODELS[config.model][0](config, img_resolution, img_channels).networks
    check_parameters(
        sum(p.numel() for p in shapes.parameters()),
        f"--width {config.width}, --resolution {img_resolution}, --z-dim {config.z_dim}"
        + (f", --num-classes {config.num_classes}" if config.num_classes else ""),
    )


def _check_known(name: str) -> None:
    if name not in _MODELS:
        raise GanforgeError(
            f"--model: unknown model '{name}': choose one of {', '.join(list_models())}"
        )

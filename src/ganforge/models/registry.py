"""Models by short, validated names: name -> builder of a ModelFamily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ganforge.bounds import check_parameters
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.models.family import CONDITIONS, ModelFamily

Builder = Callable[[TrainConfig, int, int], ModelFamily]
_MODELS: dict[str, tuple[Builder, str, dict[str, Any]]] = {}


def register_model(
    name: str, builder: Builder, condition: str = "none", defaults: dict[str, Any] | None = None
) -> None:
    """Register `builder(config, img_resolution, img_channels) -> ModelFamily` under `name`;
    `condition` (models.family.CONDITIONS) says what its sampler takes besides noise, so that
    the trainer knows before building it whether the data must bring labels or pairs;
    `defaults` are the model's own defaults for training options the user did not give."""
    assert condition in CONDITIONS, condition
    _MODELS[name] = (builder, condition, dict(defaults or {}))


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_condition(name: str) -> str:
    _check_known(name)
    return _MODELS[name][1]


def model_defaults(name: str) -> dict[str, Any]:
    """Training options where this model differs from TrainConfig's defaults (README: Models)."""
    _check_known(name)
    return dict(_MODELS[name][2])


def build_model(config: TrainConfig, img_resolution: int, img_channels: int) -> ModelFamily:
    check_model_size(config, img_resolution, img_channels)
    return _MODELS[config.model][0](config, img_resolution, img_channels)


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

"""Models by short, validated names: name -> builder of a ModelFamily."""

from __future__ import annotations

from collections.abc import Callable

from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.models.family import CONDITIONS, ModelFamily

Builder = Callable[[TrainConfig, int, int], ModelFamily]
_MODELS: dict[str, tuple[Builder, str]] = {}


def register_model(name: str, builder: Builder, condition: str = "none") -> None:
    """Register `builder(config, img_resolution, img_channels) -> ModelFamily` under `name`;
    `condition` (models.family.CONDITIONS) says what its sampler takes besides noise, so that
    the trainer knows before building it whether the data must bring labels or pairs."""
    assert condition in CONDITIONS, condition
    _MODELS[name] = (builder, condition)


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_condition(name: str) -> str:
    _check_known(name)
    return _MODELS[name][1]


def build_model(config: TrainConfig, img_resolution: int, img_channels: int) -> ModelFamily:
    _check_known(config.model)
    return _MODELS[config.model][0](config, img_resolution, img_channels)


def _check_known(name: str) -> None:
    if name not in _MODELS:
        raise GanforgeError(
            f"--model: unknown model '{name}': choose one of {', '.join(list_models())}"
        )

"""Models by short, validated names: name -> builder of a ModelFamily."""

from __future__ import annotations

from collections.abc import Callable

from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.models.family import ModelFamily

Builder = Callable[[TrainConfig, int, int], ModelFamily]
_MODELS: dict[str, Builder] = {}


def register_model(name: str, builder: Builder) -> None:
    """Register `builder(config, img_resolution, img_channels) -> ModelFamily` under `name`."""
    _MODELS[name] = builder


def list_models() -> list[str]:
    return sorted(_MODELS)


def build_model(config: TrainConfig, img_resolution: int, img_channels: int) -> ModelFamily:
    if config.model not in _MODELS:
        raise GanforgeError(
            f"--model: unknown model '{config.model}': choose one of {', '.join(list_models())}"
        )
    return _MODELS[config.model](config, img_resolution, img_channels)

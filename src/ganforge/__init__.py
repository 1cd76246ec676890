"""ganforge: train, diagnose, evaluate and use Generative Adversarial Networks.

import ganforge
run = ganforge.train(model="dcgan", data="mnist-mini", steps=1500)
images = run.sample(64, seed=0)          # uint8 (64, 28, 28, 1)
scores = ganforge.evaluate_run(run)      # FID, KID, precision/recall, ... (also RUN/eval.json)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ganforge.errors import GanforgeError
from ganforge.i18n import set_language

if TYPE_CHECKING:  # what the names below are, for tools that read the code without running it
    from ganforge.config import TrainConfig
    from ganforge.evaluate import evaluate_run
    from ganforge.run import Run, load_generator, load_run
    from ganforge.training.loop import train

__version__ = "0.1.0"
__all__ = [
    "GanforgeError",
    "Run",
    "TrainConfig",
    "evaluate_run",
    "load_generator",
    "load_run",
    "set_language",
    "train",
]

# imported on first use (PEP 562): `ganforge --help` and `import ganforge.cli_words` need no
# torch, which these modules import
_LAZY = {
    "Run": "ganforge.run",
    "TrainConfig": "ganforge.config",
    "evaluate_run": "ganforge.evaluate",
    "load_generator": "ganforge.run",
    "load_run": "ganforge.run",
    "train": "ganforge.training.loop",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once imported, an attribute like any other
        return value
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""ganforge: train, diagnose, evaluate and use Generative Adversarial Networks.

import ganforge
run = ganforge.train(model="dcgan", data="mnist-mini", steps=1500)
images = run.sample(64, seed=0)          # uint8 (64, 28, 28, 1)
scores = ganforge.evaluate_run(run)      # FID, KID, precision/recall, ... (also RUN/eval.json)
"""

from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.evaluate import evaluate_run
from ganforge.i18n import set_language
from ganforge.run import Run, load_run
from ganforge.training.loop import train

__version__ = "0.1.0"
__all__ = [
    "GanforgeError",
    "Run",
    "TrainConfig",
    "evaluate_run",
    "load_run",
    "set_language",
    "train",
]

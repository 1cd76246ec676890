"""In-training evaluation (--eval-every): the answer to GAN training's stopping problem.

The losses of a GAN do not say when its samples are good. Every N steps this measures one
metric on a fixed budget of samples from the sampling network (the EMA copy when kept), drawn
from a fixed noise seed; the best value so far decides `checkpoints/best.safetensors`, and
--early-stop-patience P ends a run that has not improved in P evaluations. Evaluation uses
its own noise generator and no global RNG, so it never changes the training trajectory.
A translator (pix2pix) is measured instead by L1, PSNR or SSIM on held-out pairs, in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.evaluate import (
    measure_generator,
    point_reference,
    real_reference,
    stacked_reference,
)
from ganforge.metrics.catalog import LOWER, get_metric
from ganforge.models import run_kind
from ganforge.translate import training_pairs_reference, translation_scores


@dataclass
class EvalState:
    """What survives a resume: the best value, where it was, how long ago it improved."""

    key: str  # metric|extractor identity|n: a changed setting restarts the bookkeeping
    best: float | None = None
    best_step: int = 0
    since_best: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class TrainingEvaluator:
    def __init__(self, config: TrainConfig, device: torch.device):
        self.config = config
        self.metric = config.eval_metric
        metric = get_metric(self.metric)  # the catalogue says its direction and its needs
        self.group = metric.group
        self.lower_is_better = metric.better == LOWER
        self.pairs = None  # a translator's held-out (sources, targets), instead of features
        kind = run_kind(config)
        if (kind.data == "points") != ("points" in metric.needs):
            raise GanforgeError(
                f"--eval-metric {self.metric}: a run of points is measured by "
                "modes_captured, high_quality or reverse_kl, and only a run of points is"
            )
        if kind.data == "points":
            self.reference = point_reference(config)
            self.state = EvalState(f"{self.metric}|points|{config.eval_n}")
            return
        if kind.translator or "pairs" in metric.needs:
            self.pairs = training_pairs_reference(config)
            self.state = EvalState(f"{self.metric}|{config.eval_n}")
            return
        if "stacked" in metric.needs:  # a stacked-MNIST run's digit triples
            self.reference = stacked_reference(config, f"--eval-metric {self.metric}", device)
            identity = self.reference.classifier.identity()[:16]
            self.state = EvalState(f"{self.metric}|{identity}|{config.eval_n}")
            return
        self.reference = real_reference(
            config,
            config.extractor,
            device=device,
            progress=config.progress,
            inception_weights=config.inception_weights,
        )
        self._check_needs(metric.needs, kind)
        key = f"{self.metric}|{self.reference.extractor.identity()[:16]}|{config.eval_n}"
        self.state = EvalState(key)

    def _check_needs(self, needs: frozenset[str], kind) -> None:
        """A one-line error when the run or the extractor cannot give what the metric needs."""
        extractor = self.reference.extractor
        if "logits" in needs and "classes" not in needs and not extractor.num_classes:
            raise GanforgeError(
                f"--eval-metric {self.metric}: needs a classifier extractor, and "
                f"'{extractor.name}' has none (try --extractor mnist)"
            )
        if "classes" in needs:
            if not kind.class_conditional:
                raise GanforgeError(
                    f"--eval-metric {self.metric}: needs a class-conditional model (cgan, acgan)"
                )
            if "logits" in needs and not set(self.config.class_names) <= set(extractor.class_names):
                raise GanforgeError(
                    f"--eval-metric {self.metric}: extractor '{extractor.name}' "
                    "does not classify this run's classes (try --extractor for your data)"
                )

    def restore(self, saved: dict | None) -> None:
        """Continue the bookkeeping of a checkpoint, unless it measured something else."""
        if saved and saved.get("key") == self.state.key:
            self.state = EvalState(**saved)

    def evaluate(self, family, network: torch.nn.Module, step: int) -> tuple[dict, bool]:
        """Measure now: (the metrics.jsonl record, whether this is the best so far)."""
        if self.pairs is not None:
            values = translation_scores(family, network, *self.pairs)
        else:
            values = measure_generator(
                family,
                network,
                self.reference,
                [self.group],
                n=self.config.eval_n,
                seed=self.config.seed,
                class_names=self.config.class_names,
            )
        value = float(values[self.metric])
        state = self.state
        improved = state.best is None or (
            value < state.best if self.lower_is_better else value > state.best
        )
        if improved:
            state.best, state.best_step, state.since_best = value, step, 0
        else:
            state.since_best += 1
        record = {"step": step}
        for key, item in values.items():
            if isinstance(item, (int, float)):
                record[f"eval_{key}"] = round(float(item), 6)
        record["eval_best"] = improved
        return record, improved

    def should_stop(self) -> bool:
        patience = self.config.early_stop_patience
        return patience > 0 and self.state.since_best >= patience

    def stop_message(self, step: int) -> str:
        s = self.state
        return (
            f"early stop at step {step}: {self.metric} has not improved in "
            f"{s.since_best} evaluations (best {s.best:.4g} at step {s.best_step}, kept in "
            "checkpoints/best.safetensors)"
        )

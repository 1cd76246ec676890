"""The metric catalogue: every number ganforge reports about a generator, declared once.

A *group* is one computation — what `ganforge eval --metrics pr` names — and gives one or more
*metrics* (precision and recall). A metric says which way is better, what it needs, how it is
labelled and printed; `ganforge eval`, `ganforge compare`, the in-training evaluation, the
best checkpoint and early stopping all read it from here.

Adding a metric is one module that declares its group (as builtin.py does):

    @register_group(
        "sharpness", needs=("features",), description="...",
        metrics=(Metric("sharpness", "sharpness", HIGHER, "mean edge energy"),),
    )
    def sharpness(inputs: MetricInputs) -> dict:
        return {"sharpness": ...}

imported by ganforge/metrics/__init__.py. Whether a metric applies to a run is asked of the
model's kind (ganforge.models.Kind), never of its name. Imports nothing from ganforge.training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ganforge.errors import GanforgeError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ganforge.metrics.features import FeatureSet

LOWER, HIGHER = "lower", "higher"
# What a metric is computed from:
#   features: real and fake features from an extractor;
#   logits: an extractor with a classifier head (its class predictions on the samples);
#   classes: samples asked for by class (a class-conditional model) and the real labels;
#   pairs: a translator's outputs and the targets of held-out (source, target) pairs;
#   points: samples and real data that are points in the plane (2-D toy data);
#   stacked: RGB samples whose channels are each a digit, read by a digit classifier (any
#   noise-to-image kind; that the run's data is stacked-mnist is checked by evaluate.py).
NEEDS = ("features", "logits", "classes", "pairs", "points", "stacked")


@dataclass(frozen=True)
class Metric:
    """One number: `name` is its key in eval.json's "metrics" and metrics.jsonl's eval_<name>.

    `better`: LOWER, HIGHER or None (no direction: a figure to read, not to rank).
    `description`: one line, the last column of `ganforge eval`'s table and of compare's.
    `needs`: what it needs beyond its group's (class accuracy needs a classifier too).
    `trackable`: --eval-metric may pick it (best checkpoint, early stop); needs a direction.
    `highlight`: compare bolds the best run's value, if it has a direction (density: ~1 is
    ideal, not "more").
    Printed with `digits` decimals, "± values[plus_minus]" or "/ values[out_of]" after it.
    """

    name: str
    label: str
    better: str | None
    description: str
    needs: frozenset[str] = frozenset()
    trackable: bool = True
    highlight: bool = True
    digits: int = 4
    plus_minus: str | None = None
    out_of: str | None = None
    group: str = ""  # set by register_group

    def __post_init__(self) -> None:
        if self.better not in (LOWER, HIGHER, None):
            raise ValueError(f"metric '{self.name}': better is '{LOWER}', '{HIGHER}' or None")
        if self.better is None and self.trackable:
            raise ValueError(f"metric '{self.name}': --eval-metric needs a direction (better)")
        _check_needs(self.needs)
        object.__setattr__(self, "needs", frozenset(self.needs))

    def format(self, values: dict) -> str:
        """The metric's value in `values` (an evaluation's "metrics") as the tables print it."""
        value = values[self.name]
        if self.plus_minus:
            return f"{value:.{self.digits}f} ± {values[self.plus_minus]:.{self.digits}f}"
        if self.out_of:
            return f"{value} / {values[self.out_of]}"
        return f"{value:.{self.digits}f}"

    def best_of(self, numbers: Sequence[float]) -> float:
        """The better of `numbers` in this metric's direction."""
        return min(numbers) if self.better == LOWER else max(numbers)

    def applies_to(self, kind) -> bool:
        """Whether this metric can measure a model of `kind` (a ganforge.models.Kind)."""
        return applies(self.needs, kind)


@dataclass(frozen=True)
class MetricInputs:
    """What a group is computed from; a group reads only what its `needs` name."""

    real: FeatureSet | None = None  # features: the real images' (with logits, when classified)
    fake: FeatureSet | None = None  # features: the samples'
    seed: int = 0  # for metrics that subsample (KID)
    real_labels: np.ndarray | None = None  # classes: each real image's class (-1: unknown)
    fake_labels: np.ndarray | None = None  # classes: the class each sample was asked for
    class_names: Sequence[str] = ()  # classes: the generator's classes, by index
    classifier_names: Sequence[str] = ()  # the classes the extractor's head tells apart
    outputs: torch.Tensor | None = None  # pairs: a translator's outputs, uint8 NCHW
    targets: torch.Tensor | None = None  # pairs: their targets, uint8 NCHW
    points: np.ndarray | None = None  # points: the generator's samples, float (N, D)
    modes: np.ndarray | None = None  # points: the centres of the data's mixture (M, D)
    mode_std: float = 0.0  # points: the std of every mixture component
    channel_digits: np.ndarray | None = None  # stacked: the digit of each sample's R, G, B (N, 3)


@dataclass(frozen=True)
class MetricGroup:
    """One computation giving `metrics`; `option`: a `ganforge eval --metrics` choice (a
    translator's scores are always measured together)."""

    name: str
    needs: frozenset[str]
    description: str
    compute: Callable[[MetricInputs], dict] = field(repr=False)
    metrics: tuple[Metric, ...]
    option: bool = True

    def applies_to(self, kind) -> bool:
        """Whether this group can measure a model of `kind` (a ganforge.models.Kind)."""
        return applies(self.needs, kind)


_GROUPS: dict[str, MetricGroup] = {}
_METRICS: dict[str, Metric] = {}


def _check_needs(needs) -> None:
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"unknown needs {sorted(unknown)} (known: {', '.join(NEEDS)})")


def applies(needs: frozenset[str], kind) -> bool:
    """Whether a model of `kind` gives what `needs` names: pairs only from a translator,
    points only from a model of points, classes only from a class-conditional model."""
    if kind.data == "points" or "points" in needs:
        return kind.data == "points" and "points" in needs
    if "pairs" in needs or not kind.draws_from_noise:
        return "pairs" in needs and kind.translator
    return "classes" not in needs or kind.class_conditional


def register_group(
    name: str,
    *,
    needs: Sequence[str],
    description: str,
    metrics: Sequence[Metric],
    option: bool = True,
) -> Callable:
    """Decorator: declare the group `name`, computed by the decorated function (MetricInputs ->
    a dict holding at least every metric's name), and its metrics, in the order tables list
    them. Names must be new."""

    def register(compute: Callable[[MetricInputs], dict]) -> Callable[[MetricInputs], dict]:
        if name in _GROUPS:
            raise ValueError(f"metric group '{name}' is registered twice")
        _check_needs(needs)
        declared = tuple(replace(m, group=name, needs=frozenset(needs) | m.needs) for m in metrics)
        for metric in declared:
            if metric.name in _METRICS:
                raise ValueError(f"metric '{metric.name}' is registered twice")
        group = MetricGroup(name, frozenset(needs), description, compute, declared, option)
        _GROUPS[name] = group
        _METRICS.update({metric.name: metric for metric in declared})
        return compute

    return register


def get_metric(name: str) -> Metric:
    if name not in _METRICS:
        raise GanforgeError(f"unknown metric '{name}' (known: {', '.join(_METRICS)})")
    return _METRICS[name]


def get_group(name: str) -> MetricGroup:
    if name not in _GROUPS:
        raise GanforgeError(f"unknown metric group '{name}' (known: {', '.join(_GROUPS)})")
    return _GROUPS[name]


def list_metrics(*, trackable: bool | None = None) -> tuple[Metric, ...]:
    """Every registered metric in declaration order (`trackable`: only those --eval-metric
    may pick, or only the others)."""
    return tuple(m for m in _METRICS.values() if trackable is None or m.trackable == trackable)


def list_groups(*, option: bool | None = None) -> tuple[MetricGroup, ...]:
    """Every registered group in declaration order (`option`: only `--metrics` choices)."""
    return tuple(g for g in _GROUPS.values() if option is None or g.option == option)


def eval_metric_names() -> tuple[str, ...]:
    """The names --eval-metric accepts, in declaration order."""
    return tuple(m.name for m in list_metrics(trackable=True))


def measure(groups: Sequence[str], inputs: MetricInputs) -> dict:
    """The chosen groups computed from `inputs`, as one flat dict (groups in declaration
    order, whatever the order of `groups`)."""
    chosen = [group for group in _GROUPS.values() if group.name in groups]
    classified = inputs.fake is not None and inputs.fake.logits is not None
    if any("logits" in group.needs for group in chosen) and not classified:
        names = " and ".join(g.name for g in _GROUPS.values() if "logits" in g.needs)
        raise GanforgeError(
            f"--metrics: {names} need a classifier extractor (e.g. --extractor mnist)"
        )
    out: dict = {}
    for group in chosen:
        out.update(group.compute(inputs))
    return out

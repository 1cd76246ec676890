"""The metric catalogue: each metric declared once, asked of a model's kind, never its name."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.metrics import FeatureSet
from ganforge.metrics.catalog import (
    LOWER,
    NEEDS,
    Metric,
    MetricInputs,
    get_group,
    get_metric,
    list_groups,
    list_metrics,
    measure,
    register_group,
)
from ganforge.models.family import Kind


def test_every_metric_belongs_to_one_group_that_declares_it():
    for group in list_groups():
        assert group.metrics, group.name
        for metric in group.metrics:
            assert get_metric(metric.name) is metric
            assert metric.group == group.name and group.needs <= metric.needs <= set(NEEDS)
    assert len({m.name for m in list_metrics()}) == len(list_metrics())


def test_the_eval_options_are_the_groups_of_images_and_of_points():
    assert [g.name for g in list_groups(option=True)] == [
        "fid",
        "kid",
        "pr",
        "dc",
        "modes",
        "is",
        "cond",
        "mixture",
        "stacked",
    ]


IMAGES = {"fid", "kid", "pr", "dc", "modes", "is", "stacked"}  # stacked: on stacked-mnist only


@pytest.mark.parametrize(
    "kind, groups",
    [
        (Kind(), IMAGES),
        (Kind("labelled", class_conditional=True), IMAGES | {"cond"}),
        (Kind("paired", translator=True), {"translation"}),
        (Kind("points"), {"mixture"}),
    ],
)
def test_which_groups_apply_is_asked_of_the_kind(kind, groups):
    assert {g.name for g in list_groups() if g.applies_to(kind)} == groups


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        fresh = Metric("x", "x", None, "", trackable=False)
        register_group("fid", needs=("features",), description="", metrics=(fresh,))(dict)
    with pytest.raises(ValueError, match="registered twice"):
        register_group(
            "again", needs=("features",), description="", metrics=(Metric("fid", "", LOWER, ""),)
        )(dict)
    assert "again" not in {g.name for g in list_groups()}


def test_a_trackable_metric_needs_a_direction():
    with pytest.raises(ValueError, match="needs a direction"):
        Metric("sharpness", "sharpness", None, "no direction")


def test_measure_computes_in_declaration_order_and_refuses_missing_logits():
    rng = np.random.default_rng(0)
    real, fake = (FeatureSet(rng.normal(size=(40, 4)), None, "test") for _ in range(2))
    values = measure(("dc", "fid"), MetricInputs(real=real, fake=fake))
    assert list(values) == ["fid", "density", "coverage"]
    with pytest.raises(Exception, match="modes and is need a classifier extractor"):
        measure(("is",), MetricInputs(real=real, fake=fake))
    assert get_group("is").metrics[0].format({"is": 2.5, "is_std": 0.25}) == "2.500 ± 0.250"

"""Which way is better, for every registered metric: the best checkpoint keeps the better value
and early stopping counts evaluations without a better one, in that direction; `ganforge
compare` bolds the better run.

The directions are written here by hand from what each metric means, not read from the
catalogue (ganforge.metrics.catalog), so a declaration that says the wrong thing fails; a
metric registered without a direction here fails too.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from safetensors import safe_open

import ganforge.training.evaluation as evaluation
from ganforge.compare import table_rows
from ganforge.metrics.catalog import HIGHER, LOWER, list_metrics
from ganforge.run import BEST_CHECKPOINT

DIRECTION = {
    "fid": LOWER,  # a distance between feature distributions
    "kid": LOWER,  # a distance (squared MMD)
    "precision": HIGHER,  # share of samples that fall in the real manifold
    "recall": HIGHER,  # share of real samples the fakes' manifold covers
    "density": HIGHER,  # how many real neighbourhoods hold each sample
    "coverage": HIGHER,  # share of real neighbourhoods with a sample in them
    "classes_found": HIGHER,  # classes the samples hit: fewer is mode collapse
    "kl_to_uniform": LOWER,  # 0: the classes drawn evenly, no mode collapse
    "confident": None,  # share of confident predictions: a figure to read, not to rank
    "is": HIGHER,  # Inception Score: confident and varied class predictions
    "class_accuracy": HIGHER,  # samples recognised as the class asked for
    "worst_class_accuracy": HIGHER,  # the lowest per-class accuracy
    "intra_fid": LOWER,  # FID within each class
    "l1": LOWER,  # a translator's mean |output - target|
    "psnr": HIGHER,  # peak signal-to-noise ratio of output to target
    "ssim": HIGHER,  # structural similarity, 1 = identical
    "modes_captured": HIGHER,  # modes of a mixture the samples cover: fewer is collapse
    "high_quality": HIGHER,  # share of samples close to a mode
    "reverse_kl": LOWER,  # 0: the samples spread evenly over the modes
    "modes_found": HIGHER,  # stacked-MNIST digit triples drawn: fewer is collapse
    "mode_kl": LOWER,  # 0: the samples spread evenly over the 1,000 triples
}
# compare bolds no run for these (density: ~1 is ideal, not "more")
NOT_HIGHLIGHTED = {"density", "confident"}
REGISTERED = [metric.name for metric in list_metrics()]
TRACKABLE = [metric.name for metric in list_metrics(trackable=True)]

PIX2PIX = {"model": "pix2pix", "data": "mnist-mini-edges", "resolution": 32}
# the run each metric can measure: a translator's on pairs, class scores of a conditional model
POINTS = {"model": "mlp", "data": "ring8"}
MODEL_FOR = {
    m.name: PIX2PIX
    if "pairs" in m.needs
    else {"model": "cgan"}
    if "classes" in m.needs
    else POINTS
    if "points" in m.needs
    else {"data": "stacked-mnist"}
    if "stacked" in m.needs
    else {}
    for m in list_metrics()
}

# Measured at steps 1, 2, 3, 4, ...: the best is step 2 in the metric's direction, and step 3
# only equals it (a tie is no improvement); the other direction would keep step 1 instead.
SEQUENCE = {
    HIGHER: [1.0, 3.0, 3.0, 0.5, 0.4, 0.3, 0.2, 0.1],
    LOWER: [1.0, 0.2, 0.2, 3.0, 4.0, 5.0, 6.0, 7.0],
}


def test_every_registered_metric_has_a_direction_declared_here():
    assert set(REGISTERED) == set(DIRECTION)


@pytest.mark.parametrize("metric", list_metrics(), ids=REGISTERED)
def test_the_catalogue_declares_the_direction(metric):
    assert metric.better == DIRECTION[metric.name]
    if metric.better is None:
        assert not metric.trackable, "--eval-metric needs a direction to keep a best checkpoint"


@pytest.mark.parametrize("metric", list_metrics(), ids=REGISTERED)
def test_compare_bolds_the_better_run_of_every_row(metric):
    """Two runs, the second better by the declared direction: compare bolds it."""
    worse, better = (2.0, 1.0) if DIRECTION[metric.name] == LOWER else (1.0, 2.0)
    extras = {"kid_std": 0.0, "is_std": 0.0, "num_classes": 10, "num_modes": 8}
    results = [{"step": 1, "metrics": {metric.name: v, **extras}} for v in (worse, better)]
    runs = [SimpleNamespace(config=SimpleNamespace(model="dcgan"))] * 2
    rows = {label: best for label, _, _, best in table_rows(runs, results)}
    expected = -1 if metric.name in NOT_HIGHLIGHTED else 1
    assert rows[metric.label] == expected


def _best_meta(run) -> dict:
    with safe_open(str(run.path / "checkpoints" / BEST_CHECKPOINT), framework="pt") as handle:
        return json.loads(handle.metadata()["ganforge"])


@pytest.mark.parametrize("metric", TRACKABLE)
def test_best_checkpoint_and_early_stop_follow_the_metric_direction(
    metric, tiny_train, monkeypatch, capsys
):
    values = iter(SEQUENCE[DIRECTION[metric]])

    def measured(*args, **kwargs):
        return {metric: next(values)}

    monkeypatch.setattr(evaluation, "measure_generator", measured)
    monkeypatch.setattr(evaluation, "translation_scores", measured)
    run = tiny_train(
        steps=20,
        eval_every=1,
        eval_n=50,
        eval_metric=metric,
        early_stop_patience=2,
        **MODEL_FOR[metric],
    )
    records = [r for r in run.metrics() if f"eval_{metric}" in r]
    assert [r["eval_best"] for r in records] == [True, True, False, False]
    best = _best_meta(run)
    assert best["step"] == 2 and best["eval"][f"eval_{metric}"] == SEQUENCE[DIRECTION[metric]][1]
    # 2 evaluations (steps 3 and 4) without a better value than step 2's: stop at step 4
    assert run.step == 4
    assert f"early stop at step 4: {metric} has not improved in 2 evaluations" in (
        capsys.readouterr().err
    )

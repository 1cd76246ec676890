"""Which way is better, for every metric --eval-metric takes: the best checkpoint keeps the
better value and early stopping counts evaluations without a better one, in that direction.

The directions are written here by hand from what each metric means, not read from the
package's tables, so a table that says the wrong thing fails; a metric added to
config.EVAL_METRICS without a direction here fails too.
"""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

import ganforge.training.evaluation as evaluation
from ganforge.compare import BETTER
from ganforge.config import EVAL_METRICS
from ganforge.evaluate import SCORES
from ganforge.run import BEST_CHECKPOINT
from ganforge.translate import TRANSLATION_METRICS

HIGHER, LOWER = "higher", "lower"
DIRECTION = {
    "fid": LOWER,  # a distance between feature distributions
    "kid": LOWER,  # a distance (squared MMD)
    "precision": HIGHER,  # share of samples that fall in the real manifold
    "recall": HIGHER,  # share of real samples the fakes' manifold covers
    "density": HIGHER,  # how many real neighbourhoods hold each sample
    "coverage": HIGHER,  # share of real neighbourhoods with a sample in them
    "kl_to_uniform": LOWER,  # 0: the classes drawn evenly, no mode collapse
    "is": HIGHER,  # Inception Score: confident and varied class predictions
    "class_accuracy": HIGHER,  # samples recognised as the class asked for
    "intra_fid": LOWER,  # FID within each class
    "l1": LOWER,  # a translator's mean |output - target|
    "psnr": HIGHER,  # peak signal-to-noise ratio of output to target
    "ssim": HIGHER,  # structural similarity, 1 = identical
}
# rows `ganforge compare` highlights that --eval-metric does not take
COMPARE_ONLY = {"classes_found": HIGHER, "worst_class_accuracy": HIGHER}

PIX2PIX = {"model": "pix2pix", "data": "mnist-mini-edges", "resolution": 32}
MODEL_FOR = {"class_accuracy": {"model": "cgan"}, "intra_fid": {"model": "cgan"}}
MODEL_FOR.update({name: PIX2PIX for name in ("l1", "psnr", "ssim")})

# Measured at steps 1, 2, 3, 4, ...: the best is step 2 in the metric's direction, and step 3
# only equals it (a tie is no improvement); the other direction would keep step 1 instead.
SEQUENCE = {
    HIGHER: [1.0, 3.0, 3.0, 0.5, 0.4, 0.3, 0.2, 0.1],
    LOWER: [1.0, 0.2, 0.2, 3.0, 4.0, 5.0, 6.0, 7.0],
}


def test_every_eval_metric_has_a_direction_declared_here():
    assert set(DIRECTION) == set(EVAL_METRICS)


@pytest.mark.parametrize("metric", EVAL_METRICS)
def test_the_package_tables_agree_on_the_direction(metric):
    lower = DIRECTION[metric] == LOWER
    assert SCORES[metric] is lower
    if metric in TRANSLATION_METRICS:
        assert TRANSLATION_METRICS[metric] is lower
    if metric in BETTER:  # density has none there: compare bolds no row for it
        assert BETTER[metric] is (min if lower else max)


def test_compare_highlights_the_better_value_of_every_row():
    for name, better in BETTER.items():
        direction = DIRECTION.get(name) or COMPARE_ONLY[name]
        assert better is (min if direction == LOWER else max), name


def _best_meta(run) -> dict:
    with safe_open(str(run.path / "checkpoints" / BEST_CHECKPOINT), framework="pt") as handle:
        return json.loads(handle.metadata()["ganforge"])


@pytest.mark.parametrize("metric", EVAL_METRICS)
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
        **MODEL_FOR.get(metric, {}),
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

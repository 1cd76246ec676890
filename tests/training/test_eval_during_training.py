"""--eval-every: the metric is logged, the best checkpoint kept, early stopping, exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import ganforge
import ganforge.training.evaluation as evaluation
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.run import BEST_CHECKPOINT

EVAL = {"eval_every": 5, "eval_n": 100}


def eval_records(run):
    return [r for r in run.metrics() if "eval_fid" in r]


def checkpoint_meta(path):
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["ganforge"])


def test_the_metric_is_logged_and_the_best_step_is_kept(tiny_train):
    run = tiny_train(steps=20, lr_g=2e-3, lr_d=2e-3, **EVAL)
    records = eval_records(run)
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    fids = [r["eval_fid"] for r in records]
    assert len(set(fids)) == len(fids)  # the generator changed between evaluations
    # eval_best marks each new minimum
    assert [r["eval_best"] for r in records] == [
        i == 0 or fid < min(fids[:i]) for i, fid in enumerate(fids)
    ]
    best = min(records, key=lambda r: r["eval_fid"])
    # a logged value is the FID of that step's (EMA) generator on --eval-n samples from the
    # run's seed: what `ganforge eval` measures on that step's checkpoint
    for checkpoint, record in (("newest", records[-1]), ("best", best)):
        measured = ganforge.evaluate_run(
            run, n=100, metrics="fid", seed=0, checkpoint=checkpoint, write=False
        )
        assert record["eval_fid"] == pytest.approx(measured["metrics"]["fid"], abs=2e-6)
    best_file = run.path / "checkpoints" / BEST_CHECKPOINT
    meta = checkpoint_meta(best_file)
    assert meta["step"] == best["step"] and meta["eval"]["eval_fid"] == best["eval_fid"]
    # it holds that step's weights: those of a run stopped at that step
    short = tiny_train("short", steps=best["step"], lr_g=2e-3, lr_d=2e-3)
    a = load_file(str(best_file))
    b = load_file(str(short.checkpoints[-1][1]))
    assert all(torch.equal(a[k], b[k]) for k in b if k.startswith("networks."))


def test_best_checkpoint_loads_by_name(tiny_train):
    run = tiny_train(steps=10, **EVAL)
    family = ganforge.load_run(run.path).load("best")
    assert family is not None
    assert ganforge.evaluate_run(run, n=50, metrics="fid", checkpoint="best", write=False)[
        "step"
    ] in (
        5,
        10,
    )


def test_evaluation_does_not_change_the_training_trajectory(tiny_train):
    plain = tiny_train("plain", steps=12)
    measured = tiny_train("measured", steps=12, eval_every=4, eval_n=64)
    a = load_file(str(plain.checkpoints[-1][1]))
    b = load_file(str(measured.checkpoints[-1][1]))
    networks = [k for k in a if k.startswith("networks.")]
    assert networks and all(torch.equal(a[k], b[k]) for k in networks)


def test_early_stop_after_patience_evaluations_without_improvement(tiny_train, monkeypatch, capsys):
    # a metric that gets worse after the first evaluation: stop after 2 more
    values = iter([10.0, 11.0, 12.0, 13.0, 14.0])
    monkeypatch.setattr(evaluation, "measure_generator", lambda *a, **k: {"fid": next(values)})
    run = tiny_train(steps=50, eval_every=5, early_stop_patience=2)
    assert run.step == 15
    assert [r["eval_best"] for r in eval_records(run)] == [True, False, False]
    assert "early stop at step 15" in capsys.readouterr().err
    assert checkpoint_meta(run.path / "checkpoints" / BEST_CHECKPOINT)["step"] == 5
    assert (run.path / "samples" / "final.png").is_file()


def test_resume_continues_the_best_bookkeeping(tiny_train, without_wall_clock):
    whole = tiny_train("whole", steps=20, **EVAL)
    first = tiny_train("split", steps=10, checkpoint_every=5, **EVAL)
    resumed = ganforge.train(resume=first.path, steps=20)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(whole.metrics())
    best_a = checkpoint_meta(whole.path / "checkpoints" / BEST_CHECKPOINT)
    best_b = checkpoint_meta(resumed.path / "checkpoints" / BEST_CHECKPOINT)
    assert best_a["step"] == best_b["step"] and best_a["eval"] == best_b["eval"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"early_stop_patience": 3}, "--early-stop-patience: needs --eval-every"),
        ({"eval_every": 5, "eval_metric": "sharpness"}, "--eval-metric: 'sharpness'"),
        ({"eval_every": 5, "eval_n": 1}, "--eval-n"),
        ({"eval_every": -1}, "--eval-every"),
    ],
)
def test_bad_eval_options_are_named(tiny_train, options, message):
    with pytest.raises(GanforgeError, match=message):
        tiny_train(**options)


def test_cli_samples_the_best_checkpoint(tiny_train, tmp_path):
    run = tiny_train(steps=10, **EVAL)
    out = tmp_path / "best.npz"
    assert (
        main(["sample", str(run.path), "--checkpoint", "best", "--n", "4", "--out", str(out)]) == 0
    )
    best = ganforge.load_run(run.path)
    best.load("best")
    assert np.array_equal(np.load(out)["images"], best.sample(4, seed=0))

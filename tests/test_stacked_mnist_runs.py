"""A tiny DCGAN on stacked-mnist through the command line: it trains in RGB at 28 px, measures
its digit triples during training and in `ganforge eval` (26,000 samples by default, PacGAN's
count), and the stacked metrics refuse other runs in one line naming the flag."""

from __future__ import annotations

import json

import pytest

import ganforge.evaluate as evaluate
from cli_errors import assert_one_line_error
from ganforge import load_run
from ganforge.cli import main
from tiny import tiny_flags

DCGAN = {"model": "dcgan", "data": "stacked-mnist", "batch-size": 8, "steps": 2}


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory):
    """2 DCGAN steps on stacked-mnist, its mode KL measured at step 2 on 200 samples."""
    out = tmp_path_factory.mktemp("stacked") / "run"
    flags = tiny_flags(out, **DCGAN, **{"eval-every": 2, "eval-metric": "mode_kl", "eval-n": 200})
    assert main(flags) == 0
    return load_run(out)


def test_a_dcgan_trains_on_rgb_triples_and_is_measured_during_training(stacked_run):
    assert (stacked_run.config.resolution, stacked_run.config.channels) == (28, 3)
    assert stacked_run.sample(2, seed=0).shape == (2, 28, 28, 3)
    evaluations = [r for r in stacked_run.metrics() if "eval_mode_kl" in r]
    assert [r["step"] for r in evaluations] == [2]
    record = evaluations[0]
    assert 1 <= record["eval_modes_found"] <= 200 and record["eval_num_modes"] == 1000
    assert 0 <= record["eval_mode_kl"] <= 6.908  # log 1000: every sample on one mode


def test_eval_counts_the_modes_of_a_stacked_run(stacked_run, capsys):
    assert main(["eval", str(stacked_run.path), "--n", "300"]) == 0
    result = json.loads((stacked_run.path / "eval.json").read_text())
    assert set(result["metrics"]) == {"modes_found", "num_modes", "mode_kl", "mode_histogram"}
    assert result["n_fake"] == 300 and sum(result["metrics"]["mode_histogram"]) == 300
    assert result["extractor"]["name"] == "mnist (each channel)"
    out = capsys.readouterr().out
    assert f"modes found  {result['metrics']['modes_found']} / 1000" in out
    assert "26,000 samples" in out  # the protocol, in the notes


def test_eval_draws_pacgans_26000_samples_by_default(stacked_run, monkeypatch):
    asked = {}

    def measured(family, network, reference, metrics, *, n, **kwargs):
        asked.update(n=n, metrics=tuple(metrics), reference=type(reference).__name__)
        return {"modes_found": 1000, "num_modes": 1000, "mode_kl": 0.02}

    monkeypatch.setattr(evaluate, "measure_generator", measured)
    evaluate.evaluate_run(stacked_run, write=False)
    assert asked == {"n": 26_000, "metrics": ("stacked",), "reference": "StackedReference"}


def test_the_stacked_metrics_refuse_a_run_on_other_data(trained_run, tmp_path, capsys):
    assert main(["eval", str(trained_run.path), "--metrics", "stacked", "--n", "20"]) == 2
    assert_one_line_error(capsys, "--metrics stacked", "stacked-mnist", "digits")
    out = tmp_path / "run"
    assert main(tiny_flags(out, **{"eval-every": 2, "eval-metric": "modes_found"})) == 2
    assert_one_line_error(capsys, "--eval-metric modes_found", "stacked-mnist")
    assert not out.exists()


def test_a_run_on_other_data_is_not_measured_by_them(trained_run):
    result = evaluate.evaluate_run(trained_run, n=50, metrics=None, write=False)
    assert "modes_found" not in result["metrics"] and "fid" in result["metrics"]

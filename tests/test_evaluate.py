"""`ganforge eval` / evaluate_run: the numbers, the file, the table, the errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ganforge.metrics as gm
from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.evaluate import evaluate_run, format_table, parse_metrics


def test_eval_json_numbers_equal_the_metrics_api_on_the_same_samples(trained_run):
    result = evaluate_run(trained_run, n=300, metrics="fid,kid,pr,dc,modes,is", seed=3)
    saved = json.loads((trained_run.path / "eval.json").read_text())
    assert saved["metrics"] == json.loads(json.dumps(result["metrics"]))
    assert saved["n_fake"] == 300 and saved["n_real"] == 1797 and saved["step"] == 10

    fake = trained_run.sample(300, seed=3)  # the same noise as the evaluation's
    real = load_dataset("digits").images
    values = result["metrics"]
    assert values["fid"] == pytest.approx(gm.fid(real, fake, "mnist"), rel=1e-6)
    pr = gm.precision_recall(real, fake, "mnist")
    assert (values["precision"], values["recall"]) == pytest.approx((pr.precision, pr.recall))
    modes = gm.mode_coverage(fake, "mnist")
    assert values["classes_found"] == modes.classes_found
    assert values["kl_to_uniform"] == pytest.approx(modes.kl_to_uniform)
    assert np.isfinite([values[k] for k in ("kid", "density", "coverage", "is")]).all()


def test_a_better_generator_scores_better(tiny_train):
    barely = tiny_train("barely", steps=2)
    longer = tiny_train("longer", steps=150, lr_g=2e-3, lr_d=2e-3)
    fid = [
        evaluate_run(r, n=400, metrics="fid", write=False)["metrics"]["fid"]
        for r in (barely, longer)
    ]
    assert fid[1] < 0.8 * fid[0]


def test_only_the_asked_metrics_are_computed(trained_run):
    result = evaluate_run(trained_run, n=50, metrics="fid", write=False)
    assert set(result["metrics"]) == {"fid"}
    assert "biased" in " ".join(result["notes"])


def test_table_names_every_metric_and_the_bias(trained_run):
    table = format_table(evaluate_run(trained_run, n=100, write=False))
    for label in (
        "FID",
        "KID",
        "precision",
        "recall",
        "density",
        "coverage",
        "classes found",
        "IS",
    ):
        assert label in table
    assert "100 samples vs 1797 real images of digits" in table
    assert "biased upwards" in table


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"metrics": "fid,bogus"}, "--metrics: unknown metric 'bogus'"),
        ({"n": 1}, "--n"),
        ({"checkpoint": "best"}, "no best checkpoint"),
        ({"extractor": "nonesuch"}, "--extractor: unknown extractor 'nonesuch'"),
    ],
)
def test_bad_requests_are_clear_errors(trained_run, kwargs, message):
    with pytest.raises(GanforgeError, match=message):
        evaluate_run(trained_run, write=False, **{"n": 20, **kwargs})


def test_parse_metrics_dedupes_and_keeps_order():
    assert parse_metrics("kid, fid,kid") == ("kid", "fid")


def test_cli_eval_prints_the_table_and_writes_the_file(trained_run, capsys):
    assert (
        main(
            ["eval", str(trained_run.path), "--n", "60", "--metrics", "fid,modes", "--no-progress"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "FID" in out and "classes found" in out and "eval.json" in out
    assert set(json.loads((trained_run.path / "eval.json").read_text())["metrics"]) >= {
        "fid",
        "classes_found",
    }


def test_cli_eval_error_is_one_line(trained_run, capsys):
    assert main(["eval", str(trained_run.path), "--metrics", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: --metrics") and "\n" not in err

"""`ganforge eval` / evaluate_run: the numbers, the file, the table, the errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import ganforge
import ganforge.metrics as gm
from cli_errors import assert_one_line_error
from ganforge.cli import main
from ganforge.data import load_dataset, to_model_range
from ganforge.errors import GanforgeError
from ganforge.evaluate import (
    evaluate_run,
    format_table,
    measure_generator,
    parse_metrics,
    real_reference,
)
from ganforge.run import Run
from ganforge.sampling import Truncation
from tiny import TINY_OPTIONS, translator_options
from truncated import closed_form_images, resampled, scaled


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
    kid = gm.kid(real, fake, "mnist", seed=3)
    assert (values["kid"], values["kid_std"]) == pytest.approx((kid.mean, kid.std), rel=1e-6)
    dc = gm.density_coverage(real, fake, "mnist")
    assert (values["density"], values["coverage"]) == pytest.approx((dc.density, dc.coverage))
    score = gm.inception_score(fake, "mnist")
    assert (values["is"], values["is_std"]) == pytest.approx((score.mean, score.std), rel=1e-6)
    assert 1 <= values["is"] <= 10  # exp(KL) of 10 classes: 1 (one class) to 10 (ideal)


class Replay(torch.nn.Module):
    """A stand-in generator that returns the given uint8 images in order, whatever its noise."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images, self.at = to_model_range(images), 0
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # sampling asks for a device

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.images[self.at : self.at + len(z)]
        self.at += len(z)
        return out


def test_the_measured_values_for_a_perfect_and_a_hopeless_generator(trained_run):
    """Through the whole path (sampling, 8-bit rounding, features, metrics): the real digits
    measured against themselves score perfectly, uniform noise hopelessly, and half of the
    real digits in between."""
    reference = real_reference(trained_run.config)
    family = trained_run.load()
    real = load_dataset("digits").images
    n, metrics = len(real), ("fid", "kid", "pr", "dc", "modes")

    same = measure_generator(family, Replay(real), reference, ("fid", "pr", "dc", "modes"), n=n)
    assert same["fid"] == pytest.approx(0.0, abs=1e-3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.25)
    assert same["classes_found"] == 10

    quarter = real[::4]  # 450 real digits
    noise = torch.randint(0, 256, quarter.shape, dtype=torch.uint8, generator=torch.Generator())
    some = measure_generator(family, Replay(quarter), reference, metrics, n=len(quarter))
    hopeless = measure_generator(family, Replay(noise), reference, metrics, n=len(quarter))
    assert 0.0 < some["fid"] < hopeless["fid"] / 100
    # unbiased KID: ~0 for the same distribution (a little below here: the sets share images)
    assert abs(some["kid"]) < hopeless["kid"] / 50
    assert some["precision"] == 1.0 and some["coverage"] > 0.8 and some["classes_found"] == 10
    assert hopeless["precision"] < 0.05 and hopeless["coverage"] < 0.05


def test_the_newest_checkpoint_by_name_is_the_default(trained_run):
    default = evaluate_run(trained_run, n=50, metrics="fid", write=False)
    newest = evaluate_run(trained_run, n=50, metrics="fid", checkpoint="newest", write=False)
    older = evaluate_run(
        trained_run, n=50, metrics="fid", checkpoint="step_0000005.safetensors", write=False
    )
    assert newest["step"] == default["step"] == 10 and older["step"] == 5
    assert newest["metrics"] == default["metrics"] != older["metrics"]


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


# ---- truncation ------------------------------------------------------------------------------


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the shared run, for tests that write its eval files."""
    shutil.copytree(trained_run.path, tmp_path / "run")
    (tmp_path / "run" / "eval.json").unlink(missing_ok=True)
    return Run(tmp_path / "run")


def test_a_truncated_evaluation_measures_the_truncated_samples_in_a_file_of_its_own(run_copy):
    plain = evaluate_run(run_copy, n=300, metrics="fid,pr", seed=3)
    kept = (run_copy.path / "eval.json").read_bytes()
    half = evaluate_run(run_copy, n=300, metrics="fid,pr", seed=3, truncation=0.5)
    assert (run_copy.path / "eval.json").read_bytes() == kept  # the run's own numbers stay
    assert plain["truncation"] is None and half["truncation"] == {"psi": 0.5, "mode": "scale"}
    saved = json.loads((run_copy.path / "eval_truncation_scale_0.5.json").read_text())
    assert saved["truncation"] == half["truncation"] and saved["metrics"] == half["metrics"]

    real = load_dataset("digits").images
    fake = closed_form_images(run_copy, 300, 3, scaled(0.5))
    assert half["metrics"]["fid"] == pytest.approx(gm.fid(real, fake, "mnist"), rel=1e-6)
    pr = gm.precision_recall(real, fake, "mnist")
    assert (half["metrics"]["precision"], half["metrics"]["recall"]) == pytest.approx(
        (pr.precision, pr.recall)
    )
    assert half["metrics"]["fid"] != plain["metrics"]["fid"]
    same = evaluate_run(run_copy, n=300, metrics="fid", seed=3, truncation=1.0, write=False)
    assert same["truncation"] is None and same["metrics"]["fid"] == plain["metrics"]["fid"]


def test_a_resampled_evaluation_is_seeded_and_named_by_its_threshold(run_copy):
    cut = Truncation(0.8, "resample")
    first = evaluate_run(run_copy, n=200, metrics="fid", seed=1, truncation=cut)
    again = evaluate_run(run_copy, n=200, metrics="fid", seed=1, truncation=cut, write=False)
    assert first["metrics"] == again["metrics"]
    fake = closed_form_images(run_copy, 200, 1, resampled(0.8))
    real = load_dataset("digits").images
    assert first["metrics"]["fid"] == pytest.approx(gm.fid(real, fake, "mnist"), rel=1e-6)
    assert (run_copy.path / "eval_truncation_resample_0.8.json").is_file()
    assert not (run_copy.path / "eval.json").exists()


def test_cli_eval_truncation_says_so_and_keeps_eval_json(run_copy, capsys):
    args = ["eval", str(run_copy.path), "--n", "60", "--metrics", "fid", "--no-progress"]
    assert main([*args, "--truncation", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "noise truncated: truncation psi 0.5 (scale)" in out
    assert "eval_truncation_scale_0.5.json" in out
    assert not (run_copy.path / "eval.json").exists()
    assert main([*args, "--truncation", "1.5"]) == 2
    assert_one_line_error(capsys, "--truncation", "(0, 1]")


def test_a_translator_refuses_truncation(tmp_path, capsys):
    options = {**TINY_OPTIONS, **translator_options("pix2pix"), "model": "pix2pix", "steps": 1}
    run = ganforge.train(**options, out=str(tmp_path / "p2p"))
    with pytest.raises(GanforgeError, match="^--truncation: this model translates images"):
        evaluate_run(run, n=4, truncation=0.5, write=False)
    out = tmp_path / "x.png"
    assert main(["sample", str(run.path), "--truncation", "0.5", "--out", str(out)]) == 2
    assert_one_line_error(capsys, "--truncation", "translates images")
    assert not out.exists() and not (run.path / "eval.json").exists()

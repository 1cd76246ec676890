"""`ganforge compare`: the same numbers as separate evaluations with the same settings, the
Markdown and HTML it writes (each run's grid inside the page), and runs it refuses."""

from __future__ import annotations

import json

import pytest

import ganforge
from ganforge.cli import main
from ganforge.compare import _png_uri, compare_runs, format_value
from ganforge.evaluate import evaluate_run
from tiny import TINY_OPTIONS

TINY = {**TINY_OPTIONS, "steps": 4, "log_every": 2}
N, SEED = 60, 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    return [
        ganforge.train(**{**TINY, "model": model, "out": str(root / model)})
        for model in ("dcgan", "vae")
    ]


def test_compare_numbers_equal_separate_evaluations(runs, tmp_path):
    out = tmp_path / "cmp"
    result = compare_runs(runs, n=N, seed=SEED, out=out)
    assert result["runs"] == ["dcgan", "vae"]
    table = result["markdown"]
    for run, compared in zip(runs, result["results"]):
        alone = evaluate_run(
            run.path, n=N, metrics="fid,pr,dc,modes", extractor="mnist", seed=SEED, write=False
        )
        assert compared["metrics"] == alone["metrics"]
        for key in ("fid", "precision", "recall", "density", "coverage", "classes_found"):
            assert format_value(key, alone["metrics"]) in table
        assert not (run.path / "eval.json").exists()  # compare leaves the runs as they were
    saved = json.loads((out / "compare.json").read_text())
    assert saved["vae"]["metrics"] == result["results"][1]["metrics"]
    assert (out / "compare.md").read_text().count("| FID |") == 1


def test_the_page_embeds_each_runs_grid(runs, tmp_path):
    out = tmp_path / "cmp"
    compare_runs(runs, n=N, seed=SEED, out=out, metrics="fid")
    page = (out / "compare.html").read_text()
    for run in runs:
        assert _png_uri(run.sample(64, seed=SEED)) in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained
    markdown = (out / "compare.md").read_text()
    assert "samples-1.png" in markdown and (out / "samples-2.png").is_file()


def test_cli_prints_the_table(runs, tmp_path, capsys):
    out = tmp_path / "c"
    argv = ["compare", *(str(r.path) for r in runs), "--n", str(N), "--metrics", "fid,modes"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| metric | dcgan | vae |" in printed and "classes found" in printed
    assert (out / "compare.html").is_file()


def test_runs_on_other_data_are_refused(runs, tmp_path, capsys):
    other = ganforge.train(
        **{**TINY, "model": "dcgan", "steps": 1, "resolution": 32}, out=str(tmp_path / "at32")
    )
    assert main(["compare", str(runs[0].path), str(other.path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: compare:") and err.count("\n") == 1, err
    assert "32px" in err and "same data" in err
    assert main(["compare", str(runs[0].path)]) == 2
    assert "two or more" in capsys.readouterr().err


def test_the_page_in_spanish(runs, tmp_path):
    from ganforge import i18n

    i18n.set_language("es")
    try:
        compare_runs(runs, n=N, seed=SEED, out=tmp_path / "cmp", metrics="fid,pr")
    finally:
        i18n.set_language("en")
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert '<html lang="es">' in page and "dcgan frente a vae" in page
    for text in ("métrica", "cuanto menor, mejor", "fracción de muestras que parecen reales"):
        assert text in page, text
    assert (
        "La FID está sesgada hacia arriba" in page
    )  # the note, stored in English, shown in Spanish
    assert "lower is better" not in page and "Samples (" not in page

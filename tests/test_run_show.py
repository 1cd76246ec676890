"""Run.show() and Run._repr_png_: a run's samples and curves as pictures a notebook shows inline,
the same pixels as the CLI's grid; importing ganforge leaves matplotlib's backend alone (a
notebook keeps showing its own plots inline); paths may be given as pathlib.Path."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.report import image_grid
from tiny import TINY_POINTS


def test_samples_are_the_grid_of_sample(trained_run):
    picture = trained_run.show("samples", n=12, seed=3, columns=4)
    expected = image_grid(trained_run.sample(12, seed=3), columns=4)
    assert picture.mode == "L"  # grayscale digits
    np.testing.assert_array_equal(np.asarray(picture), expected[..., 0])


def test_a_run_of_points_shows_the_png_of_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = ganforge.train(**TINY_POINTS, out=tmp_path / "ring")
    picture = run.show("samples", n=500, seed=2)
    assert main(["sample", str(run.path), "--n", "500", "--seed", "2", "--out", "p.png"]) == 0
    np.testing.assert_array_equal(np.asarray(picture), np.asarray(Image.open("p.png")))


def test_curves_draw_the_panels_asked_for_in_their_order(trained_run):
    every = trained_run.show("curves")
    two = trained_run.show("curves", panels=["Gradient norms", "Losses"])
    one = trained_run.show("curves", panels=["Losses"])
    assert every.width > two.width > one.width
    assert two.height == one.height  # one row either way


def test_unknown_panel_or_picture_is_an_error_naming_it(trained_run):
    with pytest.raises(ganforge.GanforgeError, match="'Nope'.*Losses"):
        trained_run.show("curves", panels=["Nope"])
    with pytest.raises(ganforge.GanforgeError, match="'grid'"):
        trained_run.show("grid")


def test_a_run_shows_itself_as_its_samples(trained_run, tmp_path):
    png = trained_run._repr_png_()
    assert png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size == trained_run.show("samples").size
    bare = tmp_path / "bare"  # a run folder before its first checkpoint: text only
    bare.mkdir()
    shutil.copy(trained_run.path / "config.json", bare)
    assert ganforge.load_run(bare)._repr_png_() is None


def test_importing_and_training_keep_the_notebook_backend(tmp_path):
    """ipykernel sets MPLBACKEND to its inline backend; ganforge must not switch it to Agg."""
    code = (
        "import matplotlib, ganforge\n"
        "from tiny import TINY_OPTIONS\n"
        f"run = ganforge.train(**TINY_OPTIONS, out={str(tmp_path / 'run')!r})\n"
        "run.show('curves')\n"
        "import ganforge.report.html, ganforge.report.lab_frame, ganforge.app.lab_view\n"
        "ganforge.report.html.build_report(run)\n"
        "print(matplotlib.get_backend())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "svg", "PYTHONPATH": str(Path(__file__).parent)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "svg"


def test_paths_may_be_pathlib_paths(tmp_path, tiny_options):
    """In a notebook, out=Path(...) is the natural spelling; config.json keeps it as text."""
    run = ganforge.train({**tiny_options, "steps": 2}, out=tmp_path / "run")
    assert run.path == tmp_path / "run"
    assert run.config.out == str(tmp_path / "run")
    config = ganforge.TrainConfig.from_dict({"data": Path("some/folder")})
    assert config.data == "some/folder"
    assert config.replace(out=tmp_path).out == str(tmp_path)


def test_classes_are_the_labelled_rows_of_sample_classes(tiny_train, tmp_path, monkeypatch):
    """A conditional run's rows, one per class named on the left: the picture of `ganforge
    sample RUN --classes all --n N --seed S` to the pixel; a run without classes says so."""
    monkeypatch.chdir(tmp_path)
    run = tiny_train("cgan", model="cgan")
    picture = run.show("classes", n=3, seed=5)
    assert main(["sample", str(run.path), "--classes", "all", "--n", "3", "--seed", "5",
                 "--out", "rows.png"]) == 0  # fmt: skip
    with Image.open("rows.png") as written:
        np.testing.assert_array_equal(np.asarray(picture), np.asarray(written))
    grid = image_grid(run.class_grid(3, seed=5)[0], columns=3)
    assert picture.width > grid.shape[1] and picture.height == grid.shape[0]  # the names' margin
    with pytest.raises(ganforge.GanforgeError, match="not class-conditional"):
        tiny_train("plain").show("classes")


def test_an_evaluation_panel_is_named_in_english_in_either_language(tiny_train):
    """Panels are named by their English titles whatever the language (the picture's titles
    are translated): a Spanish notebook asks for the evaluation curve as an English one does."""
    run = tiny_train("evaluated", steps=4, log_every=2, eval_every=2, eval_metric="fid", eval_n=32)
    panel = "Evaluation: fid (--eval-every)"
    english = run.show("curves", panels=[panel])
    ganforge.set_language("es")
    spanish = run.show("curves", panels=[panel])
    assert spanish.size == english.size
    assert np.asarray(spanish).tobytes() != np.asarray(english).tobytes()  # its title, in Spanish


def test_a_translator_shows_itself_as_its_newest_progress_rows(tiny_train, model_options):
    """A pix2pix run at the end of a notebook cell: its rows of source | output | target (the
    run's own final picture), not an error; before any picture, its text alone."""
    run = tiny_train("pix2pix", model="pix2pix", **model_options("pix2pix"))
    final = run.path / "samples" / "final.png"
    assert run._repr_png_() == final.read_bytes()
    for picture in (run.path / "samples").glob("*.png"):
        picture.unlink()
    assert run._repr_png_() is None

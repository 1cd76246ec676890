"""`ganforge translate` and the evaluation of translators: files in, PNGs out with the same
names; bad inputs stop with one line and nothing written; an output never replaces an input
(however --out names its folder); L1/PSNR/SSIM on held-out pairs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data.folder import read_square
from ganforge.evaluate import evaluate_run
from ganforge.translate import load_translator, translate_files, translate_images

PIX2PIX = {
    "model": "pix2pix",
    "data": "mnist-mini-edges",
    "resolution": 32,
    "width": 4,
    "batch_size": 8,
    "steps": 4,
    "n_grid": 4,
    "progress": False,
}


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory) -> ganforge.Run:
    return ganforge.train(**PIX2PIX, out=str(tmp_path_factory.mktemp("pix2pix") / "run"))


@pytest.fixture(scope="module")
def held_out_edges():
    return load_dataset("mnist-mini-edges", split="test")


@pytest.fixture
def inputs(tmp_path, held_out_edges):
    """Edge maps as files: two PNGs in a sub-folder, an RGB JPEG of another size, clutter."""
    root = tmp_path / "inputs"
    (root / "sub").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(held_out_edges.sources[i, 0].numpy()).save(root / "sub" / f"{i}.png")
    rgb = Image.fromarray(held_out_edges.sources[60, 0].numpy()).convert("RGB")
    rgb.resize((40, 40)).save(root / "photo.jpg")
    (root / "notes.txt").write_text("not an image, and not named like one: left alone")
    return root


def test_translates_a_folder_into_pngs_of_the_same_names(pix2pix_run, inputs, tmp_path):
    out = tmp_path / "out"
    written = translate_files(pix2pix_run.path, inputs, out)
    names = sorted(str(p.relative_to(out)) for p in written)
    assert names == ["photo.png", "sub/0.png", "sub/1.png"]
    _, family, network = load_translator(pix2pix_run)
    for relative, source in (("sub/1.png", "sub/1.png"), ("photo.png", "photo.jpg")):
        image = np.asarray(Image.open(out / relative))
        assert image.shape == (32, 32) and image.dtype == np.uint8  # the run's size, grayscale
        pixels = torch.from_numpy(read_square(inputs / source, 32, 1))[None]
        assert np.array_equal(image, translate_images(family, network, pixels)[0, 0].numpy())


def test_cli_translates_one_file(pix2pix_run, inputs, tmp_path, capsys):
    out = tmp_path / "one"
    args = ["translate", str(pix2pix_run.path), str(inputs / "sub" / "0.png"), "--out", str(out)]
    assert main(args) == 0
    assert "wrote 1 translated images" in capsys.readouterr().out
    assert [p.name for p in out.iterdir()] == ["0.png"]
    again = tmp_path / "again"
    assert main([*args[:3], "--out", str(again), "--no-ema", "--checkpoint", "newest"]) == 0
    assert (again / "0.png").is_file()


def test_an_unreadable_input_stops_before_anything_is_written(
    pix2pix_run, inputs, tmp_path, capsys, tree_snapshot
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").mkdir()
    (out / "sub" / "0.png").write_bytes(b"an earlier output")
    (inputs / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    before = tree_snapshot(out)
    assert main(["translate", str(pix2pix_run.path), str(inputs), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: error: INPUT: cannot read image") and "broken.png" in err
    assert "\n" not in err
    assert tree_snapshot(out) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "no such file or folder"),
        (lambda root: root / "notes.txt", "cannot read image"),
        (lambda root: root / "empty", "holds no images"),
    ],
)
def test_bad_inputs_are_named(pix2pix_run, inputs, tmp_path, make, message):
    (inputs / "empty").mkdir()
    with pytest.raises(GanforgeError, match=message):
        translate_files(pix2pix_run, make(inputs), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_clashing_names_and_a_file_as_out_are_refused(pix2pix_run, inputs, tmp_path):
    Image.new("L", (8, 8)).save(inputs / "photo.png")  # photo.jpg becomes photo.png too
    with pytest.raises(GanforgeError, match="would both be written"):
        translate_files(pix2pix_run, inputs, tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(GanforgeError, match="--out: .* is a file"):
        translate_files(pix2pix_run, inputs / "sub", tmp_path / "file")


def test_runs_that_do_not_translate_are_refused(trained_run, inputs, tmp_path, capsys):
    args = ["translate", str(trained_run.path), str(inputs), "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is a mlp run, which does not translate images" in err and "ganforge sample" in err
    assert not (tmp_path / "out").exists()


def test_sampling_a_translator_points_to_translate(pix2pix_run, tmp_path, capsys):
    assert main(["sample", str(pix2pix_run.path), "--out", str(tmp_path / "x.png")]) == 2
    assert "ganforge translate" in capsys.readouterr().err


def test_eval_measures_held_out_pairs(pix2pix_run, capsys):
    assert main(["eval", str(pix2pix_run.path), "--n", "100", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "100 held-out pairs of mnist-mini-edges (test split)" in out
    for label in ("L1", "PSNR (dB)", "SSIM"):
        assert label in out
    saved = json.loads((pix2pix_run.path / "eval.json").read_text())
    assert saved["task"] == "translation" and saved["n_pairs"] == 100
    values = saved["metrics"]
    assert 0 <= values["l1"] <= 1 and 0 < values["psnr"] < 100 and -1 <= values["ssim"] <= 1
    assert set(saved["source_as_output"]) == {"l1", "psnr", "ssim"}
    result = evaluate_run(pix2pix_run, n=100, write=False)
    assert result["metrics"] == values  # deterministic: eval mode, no noise
    with pytest.raises(GanforgeError, match="--metrics"):
        evaluate_run(pix2pix_run, metrics="fid", write=False)


def test_a_folder_run_is_measured_on_given_pairs(tmp_path, held_out_edges, capsys):
    pairs = tmp_path / "pairs"
    for split, start in (("train", 0), ("test", 100)):
        for i in range(start, start + 10):
            (pairs / split / "A").mkdir(parents=True, exist_ok=True)
            (pairs / split / "B").mkdir(parents=True, exist_ok=True)
            Image.fromarray(held_out_edges.sources[i, 0].numpy()).save(
                pairs / split / "A" / f"{i}.png"
            )
            Image.fromarray(held_out_edges.images[i, 0].numpy()).save(
                pairs / split / "B" / f"{i}.png"
            )
    options = {**PIX2PIX, "data": str(pairs / "train"), "channels": 1, "steps": 2}
    run = ganforge.train(**options, out=str(tmp_path / "run"))
    assert main(["eval", str(run.path)]) == 2
    assert "--pairs" in capsys.readouterr().err
    assert main(["eval", str(run.path), "--pairs", str(pairs / "test")]) == 0
    assert "10 held-out pairs" in capsys.readouterr().out


def test_eval_every_keeps_the_best_checkpoint_by_psnr(tmp_path):
    options = {**PIX2PIX, "eval_every": 2, "eval_metric": "psnr", "eval_n": 50}
    run = ganforge.train(**options, out=str(tmp_path / "run"))
    evaluations = [r for r in run.metrics() if "eval_best" in r]
    assert [r["step"] for r in evaluations] == [2, 4]
    assert all({"eval_l1", "eval_psnr", "eval_ssim"} <= set(r) for r in evaluations)
    assert (run.path / "checkpoints" / "best.safetensors").is_file()
    best = evaluate_run(run, checkpoint="best", n=50, write=False)
    assert best["metrics"]["psnr"] == pytest.approx(
        max(r["eval_psnr"] for r in evaluations), abs=1e-5
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eval_metric": "fid"}, "--eval-metric: pix2pix is measured by one of l1, psnr, ssim"),
        ({"model": "mlp", "data": "digits", "eval_metric": "psnr"}, "--eval-metric: mlp"),
    ],
)
def test_eval_metrics_must_fit_the_model(tmp_path, options, message):
    with pytest.raises(GanforgeError, match=message):
        ganforge.train(**{**PIX2PIX, "eval_every": 2, **options}, out=str(tmp_path / "run"))


# --- an output never replaces an input ---


@pytest.fixture
def photo(tmp_path):
    edges = load_dataset("mnist-mini-edges", split="test")
    path = tmp_path / "photos" / "photo.png"
    path.parent.mkdir()
    Image.fromarray(edges.sources[0, 0].numpy()).save(path)
    return path


def test_out_as_the_inputs_own_folder_is_refused(pix2pix_run, photo, capsys):
    before = photo.read_bytes()
    with pytest.raises(GanforgeError, match="^--out: ") as info:
        translate_files(pix2pix_run, photo, photo.parent)
    assert str(photo) in str(info.value) and "overwrite" in str(info.value)
    assert main(["translate", str(pix2pix_run.path), str(photo), "--out", str(photo.parent)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(photo) in error
    assert photo.read_bytes() == before


def test_an_output_that_is_a_link_to_an_input_is_refused(pix2pix_run, photo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.link(photo, out / "photo.png")  # the same file under the output's name
    before = photo.read_bytes()
    with pytest.raises(GanforgeError, match="would overwrite the input"):
        translate_files(pix2pix_run, photo, out)
    assert photo.read_bytes() == before


def test_a_folder_translated_into_a_folder_beside_it_still_works(pix2pix_run, photo, tmp_path):
    written = translate_files(pix2pix_run, photo.parent, tmp_path / "out")
    assert [p.name for p in written] == ["photo.png"]

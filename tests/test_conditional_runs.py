"""Class-conditional runs end to end: the trainer records the classes, `ganforge sample --class
/ --classes`, the NPZ labels, and the conditional metrics of `ganforge eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.evaluate import evaluate_run
from ganforge.metrics.conditional import class_accuracy, intra_class_fid
from ganforge.metrics.frechet import frechet_distance


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cgan") / "run"
    return ganforge.train(
        model="cgan",
        data="digits",
        width=8,
        z_dim=8,
        batch_size=16,
        steps=6,
        log_every=3,
        checkpoint_every=100,
        sample_every=100,
        n_grid=20,
        progress=False,
        out=str(out),
    )


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: ") and err.count("\n") == 1, err
    return err


def test_the_run_records_its_classes_and_grids_have_one_row_per_class(cgan_run):
    config = json.loads((cgan_run.path / "config.json").read_text())
    assert config["num_classes"] == 10
    assert config["class_names"] == [str(d) for d in range(10)]
    from PIL import Image

    grid = np.asarray(Image.open(cgan_run.path / "samples" / "final.png"))
    # n_grid 20, 10 classes: 10 rows of 2; cells are enlarged to 56 px plus 2 px of padding
    assert grid.shape[:2] == (10 * 58 + 2, 2 * 58 + 2)


def test_sample_one_class_writes_images_and_labels(cgan_run, tmp_path, capsys):
    out = tmp_path / "sevens.npz"
    main(["sample", str(cgan_run.path), "--class", "7", "--n", "12", "--out", str(out)])
    saved = np.load(out)
    assert saved["images"].shape == (12, 28, 28, 1) and saved["images"].dtype == np.uint8
    assert saved["labels"].tolist() == [7] * 12
    # the same noise seed drawn for class 7 through the API gives the same images
    images = cgan_run.sample(12, seed=0, labels="7")
    assert np.array_equal(images, saved["images"])
    assert not np.array_equal(images, cgan_run.sample(12, seed=0, labels=3))


def test_sample_without_a_class_draws_every_class_in_turn(cgan_run, tmp_path):
    out = tmp_path / "all.npz"
    main(["sample", str(cgan_run.path), "--n", "13", "--out", str(out)])
    assert np.load(out)["labels"].tolist() == [i % 10 for i in range(13)]


def test_sample_classes_gives_one_row_per_class_with_shared_noise(cgan_run, tmp_path):
    out = tmp_path / "rows.npz"
    main(["sample", str(cgan_run.path), "--classes", "all", "--n", "3", "--out", str(out)])
    saved = np.load(out)
    assert saved["labels"].tolist() == [c for c in range(10) for _ in range(3)]
    picked = tmp_path / "picked.npz"
    main(["sample", str(cgan_run.path), "--classes", "2,5", "--n", "3", "--out", str(picked)])
    chosen = np.load(picked)
    assert chosen["labels"].tolist() == [2, 2, 2, 5, 5, 5]
    assert np.array_equal(chosen["images"][:3], saved["images"][6:9])
    assert np.array_equal(chosen["images"][3:], saved["images"][15:18])


@pytest.mark.parametrize(
    "flags,words",
    [
        (["--class", "12"], ["--class", "'12'", "0, 1, 2"]),
        (["--class", "seven"], ["--class", "'seven'"]),
        (["--classes", "1,x"], ["--class", "'x'"]),
        (["--class", "1", "--classes", "all"], ["--class", "not both"]),
    ],
)
def test_sample_class_errors_are_one_line(cgan_run, tmp_path, capsys, flags, words):
    assert main(["sample", str(cgan_run.path), *flags, "--out", str(tmp_path / "x.png")]) == 2
    err = one_line_error(capsys)
    assert all(word in err for word in words), err
    assert not (tmp_path / "x.png").exists()


def test_class_flags_on_an_unconditional_run_are_refused(trained_run, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["sample", str(trained_run.path), "--class", "3", "--out", out]) == 2
    assert "not class-conditional" in one_line_error(capsys)
    assert main(["sample", str(trained_run.path), "--classes", "all", "--out", out]) == 2
    assert "not class-conditional" in one_line_error(capsys)


def test_a_conditional_model_needs_labelled_data(tmp_path, tiny_options):
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(GanforgeError, match="--model cgan: .*class label"):
        ganforge.train(
            **{**tiny_options, "model": "cgan", "data": str(folder), "out": str(tmp_path / "r")}
        )
    assert not (tmp_path / "r").exists()


def test_eval_of_a_conditional_run_reports_class_accuracy_and_intra_class_fid(cgan_run):
    result = evaluate_run(cgan_run, n=200, metrics="cond,fid", write=False)
    values = result["metrics"]
    assert 0 <= values["class_accuracy"] <= 1
    assert len(values["class_accuracy_per_class"]) == 10
    assert values["worst_class_accuracy"] == min(values["class_accuracy_per_class"])
    assert len(values["intra_fid_per_class"]) == 10
    assert values["intra_fid"] == pytest.approx(np.mean(values["intra_fid_per_class"]))
    assert values["intra_fid"] > 0


def test_cond_metrics_need_a_conditional_run(trained_run):
    with pytest.raises(GanforgeError, match="--metrics: cond needs a class-conditional run"):
        evaluate_run(trained_run, n=20, metrics="cond", write=False)
    # by default they are simply not computed for an unconditional run
    result = evaluate_run(trained_run, n=20, metrics=None, write=False)
    assert "class_accuracy" not in result["metrics"]


# ---- the maths -----------------------------------------------------------------------------


def test_class_accuracy_overall_and_per_class():
    logits = np.eye(3)[[0, 1, 2, 2, 1, 0]]  # predictions 0 1 2 2 1 0
    asked = np.array([0, 1, 2, 0, 0, 0])
    result = class_accuracy(logits, asked, 3)
    assert result.overall == pytest.approx(4 / 6)
    assert result.per_class == (pytest.approx(2 / 4), 1.0, 1.0)
    assert result.worst == pytest.approx(0.5)


def test_intra_class_fid_is_the_mean_of_per_class_frechet_distances():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 4))
    real_labels = np.repeat([0, 1, 2], 20)
    fake = rng.normal(size=(45, 4)) + np.repeat([[0.0], [1.0], [3.0]], 15, axis=0)
    fake_labels = np.repeat([0, 1, 2], 15)
    mean, per_class = intra_class_fid(real, real_labels, fake, fake_labels)
    expected = [frechet_distance(real[real_labels == c], fake[fake_labels == c]) for c in range(3)]
    assert per_class == pytest.approx(tuple(expected))
    assert mean == pytest.approx(np.mean(expected))
    assert per_class[0] < per_class[1] < per_class[2]  # farther shifted, farther away


def test_intra_class_fid_sees_swapped_classes_that_overall_fid_misses():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [6.0, 0.0]])
    real = np.concatenate([rng.normal(size=(200, 2)) + centres[c] for c in (0, 1)])
    labels = np.repeat([0, 1], 200)
    swapped = np.concatenate([rng.normal(size=(200, 2)) + centres[1 - c] for c in (0, 1)])
    assert frechet_distance(real, swapped) < 0.2  # the same overall distribution
    assert intra_class_fid(real, labels, swapped, labels)[0] > 30


def test_intra_class_fid_needs_samples_of_every_class():
    real = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(GanforgeError, match="class 1"):
        intra_class_fid(real, np.array([0] * 8 + [1] * 2), real[:4], np.array([0, 0, 0, 1]))


def test_sampling_labels_are_checked(cgan_run):
    family = cgan_run.load()
    from ganforge.sampling import generate

    with pytest.raises(GanforgeError, match="--class: 10 is not a class"):
        generate(family, cgan_run.generator(), 2, 0, labels=torch.tensor([1, 10]))


def test_a_model_s_own_defaults_fill_only_the_options_not_given(tmp_path, tiny_options):
    from ganforge.models import model_defaults
    from ganforge.training.loop import new_config

    defaults = model_defaults("cgan")
    assert defaults["lr_g"] != ganforge.TrainConfig().lr_g  # cgan has its own learning rates
    chosen = new_config({"model": "cgan"}, {})
    assert (chosen.lr_g, chosen.lr_d) == (defaults["lr_g"], defaults["lr_d"])
    given = new_config({"model": "cgan"}, {"lr-g": 1e-4})
    assert (given.lr_g, given.lr_d) == (1e-4, defaults["lr_d"])
    assert new_config({"model": "mlp"}, {}).lr_g == ganforge.TrainConfig().lr_g  # no own
    dcgan = new_config({"model": "dcgan"}, {})  # the rates measured best at the demo budget
    assert (dcgan.lr_g, dcgan.lr_d) == (defaults["lr_g"], defaults["lr_d"])
    # the resolved values are what the run records
    run = ganforge.train(
        **{**tiny_options, "model": "cgan", "steps": 2, "out": str(tmp_path / "r")}
    )
    assert run.config.lr_g == defaults["lr_g"]

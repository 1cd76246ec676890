"""The `ganforge` command: train (flags, --config files, resume), sample, demo, models,
datasets; errors are one line on stderr with exit code 2 and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from cli_errors import assert_one_line_error
from ganforge.cli import main
from ganforge.data import list_datasets
from ganforge.models import list_models
from tiny import tiny_flags


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Commands with default paths (runs/, samples.png) write into tmp_path, not the repo."""
    monkeypatch.chdir(tmp_path)


# ---- listing ---------------------------------------------------------------------------------


def test_models(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.split()
    assert lines == list_models()
    assert {"dcgan", "mlp"} <= set(lines)


def test_datasets(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in list_datasets():
        assert name in out
    assert "PATH" in out


def test_help_lists_every_train_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--lr-g",
        "--d-steps",
        "--g-loss",
        "--config",
        "--resume",
        "--no-progress",
        "--keep-checkpoints",
        "--strict",
        "--hflip",
        "--trust-pickle",
        "--data-cache",
    ):
        assert flag in out


def test_python_dash_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ganforge", "models"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert result.stdout.split() == list_models()


# ---- train -------------------------------------------------------------------------------------


def test_train_from_flags(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_flags(out, steps=3, log_every=3, lr_d=1e-3, g_loss="saturating")) == 0
    stdout = capsys.readouterr().out
    assert str(out) in stdout and "step 3" in stdout
    run = ganforge.load_run(out)
    assert run.step == 3
    assert (run.config.lr_d, run.config.g_loss, run.config.progress) == (1e-3, "saturating", False)
    assert (out / "samples" / "final.png").is_file()


CONFIG_VALUES = {
    "model": "mlp",
    "data": "digits",
    "width": 8,
    "batch_size": 16,
    "z_dim": 8,
    "steps": 2,
    "lr_g": 0.001,
    "log_every": 1,
    "n_grid": 4,
    "progress": False,
    "seed": 3,
}


def write_config(path, values):
    if path.suffix == ".json":
        path.write_text(json.dumps(values))
    else:
        lines = [
            f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
            for k, v in values.items()
        ]
        path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_train_with_config_file_and_overriding_flags(tmp_path, suffix):
    config_file = tmp_path / f"run{suffix}"
    write_config(config_file, {**CONFIG_VALUES, "out": str(tmp_path / "from-file")})
    out = tmp_path / "from-flags"
    code = main(
        [
            "train",
            "--config",
            str(config_file),
            "--steps",
            "3",
            "--lr-g",
            "0.0005",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert not (tmp_path / "from-file").exists()
    saved = json.loads((out / "config.json").read_text())
    # flags win over the file ...
    assert saved["steps"] == 3 and saved["lr_g"] == 0.0005 and saved["out"] == str(out)
    # ... and the file wins over the defaults
    assert saved["width"] == 8 and saved["z_dim"] == 8 and saved["seed"] == 3
    assert saved["log_every"] == 1 and saved["progress"] is False
    assert [r["step"] for r in ganforge.load_run(out).metrics()] == [1, 2, 3]


def test_config_file_with_dashed_keys(tmp_path):
    config_file = tmp_path / "run.toml"
    config_file.write_text(
        'model = "mlp"\ndata = "digits"\nwidth = 8\nbatch-size = 16\n'
        "z-dim = 8\nsteps = 1\nn-grid = 4\nprogress = false\n"
    )
    assert main(["train", "--config", str(config_file), "--out", str(tmp_path / "r")]) == 0
    assert ganforge.load_run(tmp_path / "r").config.batch_size == 16


def test_train_on_an_image_folder(tmp_path):
    folder = tmp_path / "pictures"
    for label in ("a", "b"):
        for i in range(4):
            (folder / label).mkdir(parents=True, exist_ok=True)
            pixels = np.full((40, 40, 3), 60 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{i}.png")
    out = tmp_path / "run"
    flags = tiny_flags(
        out,
        data=str(folder),
        model="dcgan",
        resolution=16,
        channels=3,
        **{"batch-size": 4, "steps": 2},
    )
    assert main(flags) == 0
    run = ganforge.load_run(out)
    assert (run.config.resolution, run.config.channels) == (16, 3)
    assert run.sample(2, seed=0).shape == (2, 16, 16, 3)


# ---- sample ------------------------------------------------------------------------------------


def test_sample_png(trained_run, tmp_path, capsys):
    out = tmp_path / "x.png"
    args = ["sample", str(trained_run.path), "--n", "16", "--seed", "0", "--out", str(out)]
    assert main(args) == 0
    assert "16 samples" in capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.format == "PNG"
        assert picture.mode == "L"  # 1-channel digits


def test_sample_npz(trained_run, tmp_path):
    args = ["sample", str(trained_run.path), "--n", "12"]
    assert main([*args, "--seed", "0", "--out", str(tmp_path / "a.npz")]) == 0
    assert main([*args, "--seed", "0", "--out", str(tmp_path / "b.npz")]) == 0
    assert main([*args, "--seed", "1", "--out", str(tmp_path / "c.npz")]) == 0
    assert main([*args, "--seed", "0", "--no-ema", "--out", str(tmp_path / "d.npz")]) == 0
    a, b, c, d = (np.load(tmp_path / f"{n}.npz")["images"] for n in "abcd")
    assert a.dtype == np.uint8 and a.shape == (12, 28, 28, 1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, d)
    assert np.array_equal(a, trained_run.sample(12, seed=0))
    assert np.array_equal(d, trained_run.sample(12, seed=0, ema=False))


def test_sample_from_an_older_checkpoint(trained_run, tmp_path):
    older = trained_run.checkpoints[0][1]
    assert (
        main(
            [
                "sample",
                str(trained_run.path),
                "--checkpoint",
                str(older),
                "--n",
                "4",
                "--out",
                str(tmp_path / "old.npz"),
            ]
        )
        == 0
    )
    old = np.load(tmp_path / "old.npz")["images"]
    assert not np.array_equal(old, trained_run.sample(4, seed=0))


def test_sample_default_out(trained_run, tmp_path):
    assert main(["sample", str(trained_run.path), "--n", "4"]) == 0
    assert (tmp_path / "samples.png").is_file()


# ---- demo ----------------------------------------------------------------------------------------


def test_demo_runs_the_default_dcgan(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--steps", "2", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "final.png" in stdout
    run = ganforge.load_run(out)
    assert (run.config.model, run.config.data, run.step) == ("dcgan", "mnist-mini", 2)
    assert (out / "samples" / "final.png").is_file() and (out / "loss_curves.png").is_file()


# ---- errors ---------------------------------------------------------------------------------


def test_unknown_model(tmp_path, capsys):
    assert main(tiny_flags(tmp_path / "r", model="gpt")) == 2
    assert_one_line_error(capsys, "--model", "gpt", *list_models())
    assert not (tmp_path / "r").exists()


def test_unknown_dataset(tmp_path, capsys):
    assert main(tiny_flags(tmp_path / "r", data="imagenet")) == 2
    assert_one_line_error(capsys, "--data", "imagenet", *list_datasets())


def test_empty_image_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(tiny_flags(tmp_path / "r", data=str(tmp_path / "empty"))) == 2
    assert_one_line_error(capsys, "--data", str(tmp_path / "empty"))


def test_unreadable_image_is_an_error_when_asked(tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "ok.png")
    (folder / "bad.png").write_bytes(b"not a png")
    assert main([*tiny_flags(tmp_path / "r", data=str(folder)), "--strict"]) == 2
    assert_one_line_error(capsys, "--data", str(folder / "bad.png"))


def test_unreadable_image_is_skipped_with_a_warning(tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(folder / f"ok{i}.png")
    (folder / "bad.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="bad.png"):
        code = main(
            tiny_flags(
                tmp_path / "r", data=str(folder), resolution=8, **{"batch-size": 2, "steps": 1}
            )
        )
    assert code == 0


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"lr-g": -0.1}, ["--lr-g", "-0.1"]),
        ({"batch-size": 4000}, ["--batch-size", "4000"]),
        ({"model": "dcgan", "resolution": 30}, ["--resolution", "30"]),
        ({"optimizer": "lbfgs"}, ["--optimizer", "lbfgs"]),
        ({"channels": 2}, ["--channels"]),
    ],
)
def test_bad_option_values(tmp_path, capsys, overrides, words):
    assert main(tiny_flags(tmp_path / "r", **overrides)) == 2
    assert_one_line_error(capsys, *words)
    assert not (tmp_path / "r").exists()


def test_unknown_key_in_config_file(tmp_path, capsys):
    config_file = tmp_path / "run.toml"
    config_file.write_text('model = "mlp"\nlearning_rate = 0.1\n')
    assert main(["train", "--config", str(config_file), "--out", str(tmp_path / "r")]) == 2
    assert_one_line_error(capsys, "learning_rate")


def test_missing_and_unparsable_config_file(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.toml")]) == 2
    assert_one_line_error(capsys, "--config", "nope.toml")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["train", "--config", str(broken)]) == 2
    assert_one_line_error(capsys, "--config", str(broken))


def test_out_pointing_at_an_existing_run(trained_run, tmp_path, capsys, tree_snapshot):
    before = tree_snapshot(trained_run.path)
    assert main(tiny_flags(trained_run.path, seed=9)) == 2
    assert_one_line_error(capsys, "--out", str(trained_run.path), "--resume")
    assert tree_snapshot(trained_run.path) == before


def test_resume_with_a_changed_option(tiny_train, capsys, tree_snapshot):
    run = tiny_train(steps=2)
    before = tree_snapshot(run.path)
    assert main(["train", "--resume", str(run.path), "--steps", "4", "--lr-g", "0.01"]) == 2
    assert_one_line_error(capsys, "--lr-g")
    assert tree_snapshot(run.path) == before


def test_resume_with_a_config_file(tiny_train, tmp_path, capsys):
    run = tiny_train(steps=2)
    config_file = tmp_path / "x.toml"
    config_file.write_text("steps = 4\n")
    assert main(["train", "--resume", str(run.path), "--config", str(config_file)]) == 2
    assert_one_line_error(capsys, "--config")


def test_sample_errors(trained_run, tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nothing")]) == 2
    assert_one_line_error(capsys, "not a ganforge run")
    assert main(["sample", str(trained_run.path), "--out", str(tmp_path / "x.gif")]) == 2
    assert_one_line_error(capsys, "--out")
    args = ["sample", str(trained_run.path), "--n", "0", "--out", str(tmp_path / "x.png")]
    assert main(args) == 2
    assert_one_line_error(capsys, "--n")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu(tmp_path, capsys):
    assert main(tiny_flags(tmp_path / "r", device="cuda")) == 2
    assert_one_line_error(capsys, "--device")


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", *tiny_flags(tmp_path / "r", model="gpt")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ganforge: error: --model" in err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--steps", "many"])
    assert info.value.code == 2
    assert "--steps" in capsys.readouterr().err


def test_large_seed_is_not_a_traceback(tmp_path, capsys):
    assert main(tiny_flags(tmp_path / "r", seed=2**50, steps=1)) == 0
    capsys.readouterr()
    assert main(tiny_flags(tmp_path / "s", seed=2**70, steps=1)) == 2
    assert_one_line_error(capsys, f"--seed: must be in 0 .. 2^63-1, got {2**70}")
    assert not (tmp_path / "s").exists()


def cli_error(argv, capsys) -> list[str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


def test_a_misspelt_flag_is_answered_by_its_command_with_the_nearest_flags(capsys):
    usage, error = cli_error(["train", "--lr-gg", "3"], capsys)
    assert usage.startswith("usage: ganforge train [--config FILE]") and len(usage) < 100
    assert error == (
        "ganforge train: error: unrecognized arguments: --lr-gg 3 (did you mean --lr-g or --lr-d?)"
    )
    *_, error = cli_error(["train", "--modle", "dcgan", "--stpes=3", "--qqqqq"], capsys)
    assert "(--modle: did you mean --model" in error and "; --stpes: did you mean --steps" in error
    assert "--qqqqq:" not in error  # nothing near it: no hint
    *_, error = cli_error(["latent", "interp", "run", "--from", "1", "--to", "2", "--moed"], capsys)
    assert error.startswith("ganforge latent interp: error:") and "did you mean --mode" in error


def test_a_misspelt_command_or_choice_gets_the_nearest(capsys):
    *_, error = cli_error(["trian"], capsys)
    assert error.endswith("(did you mean train?)")
    *_, error = cli_error(["latent", "intrep"], capsys)
    assert error.startswith("ganforge latent: error:") and error.endswith("(did you mean interp?)")
    *_, error = cli_error(["zzzzzz"], capsys)
    assert "did you mean" not in error


def test_the_help_names_the_models_with_their_own_defaults(capsys):
    from ganforge.models import list_models, model_defaults

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    shared = ganforge.TrainConfig().lr_g
    own = {m: model_defaults(m)["lr_g"] for m in list_models() if "lr_g" in model_defaults(m)}
    assert own and f"generator learning rate (default: {shared};" in text
    help_line = text.split("--lr-g X", 1)[1].split("--lr-d X", 1)[0]
    for model, value in own.items():
        if value != shared:
            assert model in help_line and str(value) in help_line, model
    assert "(default: adam)" in text  # no model has its own optimiser: nothing added
    # an option of several models (their own options) gives each model's default
    from ganforge.config import TrainConfig

    norm_line = text.split("--g-norm NAME", 1)[1].split(" --", 1)[0]
    for model in ("mlp", "dcgan"):
        assert str(TrainConfig(model=model).model_options.g_norm) in norm_line, model
    assert "mlp: " in norm_line

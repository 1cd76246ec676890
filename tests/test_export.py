"""`ganforge export RUN --format onnx|torchscript|folder`: the sampling network alone. ONNX (run
here by onnxruntime) and TorchScript give torch's images to 1e-4 for any batch size, with the
class labels or source images of conditional models and translators; the folder
(model.safetensors, config.json, README.md) loads in a fresh process without the training
code and samples the run's own images; nothing is written over an existing folder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main, parse_train_flags
from ganforge.export import export
from ganforge.sampling import to_uint8  # noqa: F401  (the images a reader gets)

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    """A tiny dcgan (noise), cgan (noise + labels) and pix2pix (sources) run."""
    from tiny import TINY_OPTIONS, translator_options

    root = tmp_path_factory.mktemp("export-runs")
    made = {}
    for model in ("dcgan", "cgan", "pix2pix"):
        options = {**TINY_OPTIONS, "model": model, **translator_options(model), "steps": 4}
        made[model] = ganforge.train(**options, out=str(root / model))
    return made


def torch_images(run, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    """The run's own sampling network on `inputs`, through its family (not the export code)."""
    family, network = run.load(), run.generator()
    with torch.no_grad():
        if family.kind.translator:
            return family.sample(network, None, inputs[0]).numpy()
        return family.sample(network, *inputs).numpy()


def fresh_inputs(run, n: int) -> tuple[torch.Tensor, ...]:
    family = run.load()
    generator = torch.Generator().manual_seed(123)
    if family.kind.translator:
        res, channels = run.config.resolution, run.config.channels
        return (torch.rand(n, channels, res, res, generator=generator) * 2 - 1,)
    z = family.sample_latent(n, generator=generator)
    if family.kind.class_conditional:
        return z, torch.randint(0, family.num_classes, (n,), generator=generator)
    return (z,)


@pytest.mark.parametrize("model", ["dcgan", "cgan", "pix2pix"])
def test_onnx_gives_torchs_images_for_any_batch(runs, model, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    run = runs[model]
    done = export(run, "onnx", tmp_path / "onnx")
    assert done.max_abs_difference <= TOLERANCE
    session = onnxruntime.InferenceSession(str(done.path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for n in (1, 5):
        inputs = fresh_inputs(run, n)
        got = session.run(None, {k: v.numpy() for k, v in zip(names, inputs)})[0]
        expected = torch_images(run, inputs)
        assert got.shape == expected.shape and np.abs(got - expected).max() <= TOLERANCE


@pytest.mark.parametrize("model", ["dcgan", "cgan", "pix2pix"])
def test_torchscript_gives_torchs_images_for_any_batch(runs, model, tmp_path):
    run = runs[model]
    done = export(run, "torchscript", tmp_path / "ts")
    loaded = torch.jit.load(str(done.path))
    for n in (1, 6):
        inputs = fresh_inputs(run, n)
        with torch.no_grad():
            got = loaded(*inputs).numpy()
        assert np.abs(got - torch_images(run, inputs)).max() <= TOLERANCE


def test_the_folder_loads_in_a_fresh_process_without_the_training_code(runs, tmp_path):
    run = runs["cgan"]
    folder = export(run, "folder", tmp_path / "cgan-model").path
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    code = (
        "import sys, json, numpy as np\n"
        "import ganforge\n"
        f"generator = ganforge.load_generator({str(folder)!r})\n"
        "images = generator.sample(6, seed=3, labels=7)\n"
        f"np.save({str(tmp_path / 'fresh.npy')!r}, images)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ganforge.training'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []  # no training module imported
    fresh = np.load(tmp_path / "fresh.npy")
    assert np.array_equal(fresh, run.sample(6, seed=3, labels=7))


def test_sample_reads_an_exported_folder_as_a_run(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = runs["dcgan"]
    export(run, "folder", tmp_path / "model")
    assert main(["sample", "model", "--n", "9", "--seed", "4", "--out", "from-folder.png"]) == 0
    assert main(["sample", str(run.path), "--n", "9", "--seed", "4", "--out", "from-run.png"]) == 0
    with Image.open("from-folder.png") as a, Image.open("from-run.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_the_model_card_says_what_it_is_how_it_was_made_and_its_license(runs, tmp_path):
    run = runs["cgan"]
    card = (export(run, "folder", tmp_path / "m").path / "README.md").read_text(encoding="utf-8")
    assert "# ganforge cgan on digits" in card and "## License" in card and "MIT" in card
    assert "`labels` (N,) int64" in card and "Not evaluated yet" in card
    command = next(line for line in card.splitlines() if line.startswith("ganforge train"))
    options = parse_train_flags(command.split()[2:])
    from ganforge.training.loop import new_config

    again = new_config({**options, "out": "x"}, {}).to_dict()
    made = run.config.to_dict()
    data_decides = ("class_names", "out", "progress")  # the class names come with the data
    assert {k: v for k, v in again.items() if k not in data_decides} == {
        k: v for k, v in made.items() if k not in data_decides
    }  # the same training
    (run.path / "eval.json").write_text(json.dumps({"n": 500, "metrics": {"fid": 12.5}}))
    card = (export(run, "folder", tmp_path / "m2").path / "README.md").read_text(encoding="utf-8")
    assert "| fid | 12.5 |" in card and "n 500" in card
    (run.path / "eval.json").unlink()


def test_nothing_is_written_over_a_folder_and_bad_weights_are_refused(runs, tmp_path, capsys):
    run = runs["dcgan"]
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    assert main(["export", str(run.path), "--format", "folder", "--out", str(taken)]) == 2
    assert "--out: " in capsys.readouterr().err
    assert [p.name for p in taken.iterdir()] == ["mine.txt"]
    folder = export(run, "folder", tmp_path / "model").path
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(GanforgeError, match="NaN or infinite"):
        ganforge.load_generator(folder)
    weights[name] = torch.zeros(3)  # another shape
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(GanforgeError, match="does not match network"):
        ganforge.load_generator(folder)

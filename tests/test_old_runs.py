"""Run folders written by ganforge 0.1 (tests/fixtures/runs-v0.1, made by make_old_runs.py at
commit 69287fa) still load, sample, evaluate and resume to the same weights with today's code:
the promise every restructuring of the config, the models or the loop has to keep."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import ganforge
from ganforge.cli import main
from ganforge.config import TrainConfig

FIXTURES = Path(__file__).parent / "fixtures" / "runs-v0.1"


def _maker():
    """make_old_runs.py: the commands whose old outputs the fixture holds."""
    path = FIXTURES.parent / "make_old_runs.py"
    spec = importlib.util.spec_from_file_location("make_old_runs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
EVALUATED = sorted(name for name in RUNS if (FIXTURES / name / "eval.json").is_file())
SAMPLED = sorted(name for name in RUNS if (FIXTURES / name / "expected-samples.npz").is_file())
AFTER = _maker().AFTER  # the sample and eval commands make_old_runs.py ran
STEP_4, STEP_8 = "checkpoints/step_0000004.safetensors", "checkpoints/step_0000008.safetensors"


def tensors(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's network and optimiser tensors (not its RNG state or logbook)."""
    with safe_open(str(path), "pt") as handle:
        return {
            k: handle.get_tensor(k) for k in handle.keys() if k.startswith(("networks.", "optim"))
        }


def header(path: Path) -> dict:
    with safe_open(str(path), "pt") as handle:
        return json.loads(handle.metadata()["ganforge"])


def assert_same(new: dict, old: dict, exact: bool) -> None:
    assert sorted(new) == sorted(old)
    for key in old:
        if exact:
            assert torch.equal(new[key], old[key]), key
        elif key.startswith("networks."):  # another CPU's kernels: float rounding apart
            torch.testing.assert_close(new[key], old[key], rtol=1e-3, atol=1e-4, msg=key)


def copy_run(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def old_command(name: str, command: str, run: Path, out: Path | None = None) -> list[str]:
    """The `command` make_old_runs.py ran on run `name`, on the copy `run`, writing to `out`."""
    (arguments,) = [a for a in AFTER[name] if a[0] == command]
    expected = f"{run}/expected-samples.npz"
    return [
        str(out) if part.format(run=run) == expected else part.format(run=run) for part in arguments
    ]


def test_every_model_of_the_old_version_is_covered():
    assert {"mlp", "dcgan", "cgan", "acgan", "pix2pix", "vae"} <= set(RUNS)


@pytest.mark.parametrize("name", RUNS)
def test_old_config_loads_with_its_trajectory_hash(name):
    """config.json as 0.1 wrote it is read whole, and hashes as its checkpoints say."""
    config = ganforge.load_run(FIXTURES / name).config
    saved = json.loads((FIXTURES / name / "config.json").read_text())
    assert config.to_dict() == TrainConfig.from_dict(saved).to_dict()
    for checkpoint in (STEP_4, STEP_8):
        assert header(FIXTURES / name / checkpoint)["config_hash"] == config.trajectory_hash()


@pytest.mark.parametrize("name", RUNS)
def test_old_run_resumes_to_the_old_weights(name, tmp_path):
    """Trained afresh, and resumed from its step-4 checkpoint, the run reaches the weights 0.1
    saved: bit for bit where this machine reproduces 0.1's first four steps bit for bit."""
    config = json.loads((FIXTURES / name / "config.json").read_text())
    straight = ganforge.train({**config, "progress": False, "out": str(tmp_path / "straight")})
    exact = all(
        torch.equal(a, b)
        for a, b in zip(
            tensors(straight.path / STEP_4).values(), tensors(FIXTURES / name / STEP_4).values()
        )
    )
    assert_same(tensors(straight.path / STEP_4), tensors(FIXTURES / name / STEP_4), exact)

    assert_same(tensors(straight.path / STEP_8), tensors(FIXTURES / name / STEP_8), exact)
    run = copy_run(name, tmp_path)
    (run / STEP_8).unlink()
    ganforge.train(resume=run, progress=False)
    assert_same(tensors(run / STEP_8), tensors(FIXTURES / name / STEP_8), exact)
    old_records = [json.loads(line) for line in (FIXTURES / name / "metrics.jsonl").open()]
    new_records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in new_records] == [r["step"] for r in old_records]


@pytest.mark.parametrize("name", SAMPLED)
def test_old_run_samples_as_before(name, tmp_path):
    """`ganforge sample` with the arguments make_old_runs.py gave gives the same images."""
    run = copy_run(name, tmp_path)
    out = tmp_path / "samples.npz"
    assert main(old_command(name, "sample", run, out)) == 0
    old = np.load(FIXTURES / name / "expected-samples.npz")
    new = np.load(out)
    assert sorted(new.files) == sorted(old.files)
    for key in old.files:
        difference = np.abs(new[key].astype(int) - old[key].astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01, key


@pytest.mark.parametrize("name", EVALUATED)
def test_old_run_evaluates_as_before(name, tmp_path):
    """`ganforge eval` of the old run gives the numbers 0.1 wrote to its eval.json."""
    run = copy_run(name, tmp_path)
    (run / "eval.json").unlink()
    assert main(old_command(name, "eval", run)) == 0
    old = json.loads((FIXTURES / name / "eval.json").read_text())
    new = json.loads((run / "eval.json").read_text())
    assert set(new["metrics"]) == set(old["metrics"])
    for metric, value in old["metrics"].items():
        assert new["metrics"][metric] == pytest.approx(value, rel=1e-4, abs=1e-6), metric

"""The benchmark scripts the README's speed figures come from still run (tiny settings here:
the figures themselves are measured by hand, never asserted on time)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]


def script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "benchmarks" / name), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_speed_options_puts_each_variant_beside_the_config(tmp_path):
    out = tmp_path / "speed.json"
    done = script(
        "speed_options.py",
        *("--configs", "dcgan-28", "--variants", "reuse-fakes,accumulate-4"),
        *("--blocks", "2", "--block", "1", "--warmup", "1", "--threads", "1"),
        *("--json", str(out)),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(out.read_text())
    assert list(result["variants"]) == ["baseline", "reuse-fakes", "accumulate-4"]
    assert result["variants"]["baseline"]["ratio"] == [1.0, 1.0, 1.0]
    for found in result["variants"].values():
        low, median, high = found["ratio"]
        assert 0 < low <= median <= high and math.isfinite(found["img_per_s"])
    assert "accumulate-4" in done.stdout and "x baseline" in done.stdout


def test_speed_options_names_an_unknown_variant(tmp_path):
    done = script("speed_options.py", "--variants", "turbo", cwd=tmp_path)
    assert done.returncode != 0
    assert "--variants: unknown turbo" in done.stderr


def test_roofline_prints_the_share_of_peak(tmp_path):
    done = script(
        "roofline.py", "--configs", "dcgan-28", "--steps", "2", "--threads", "1", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "dcgan-28" in done.stdout and "%" in done.stdout


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_roofline_counts_what_torchs_counter_counts_and_r1_besides():
    roofline = load("roofline")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.LeakyReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 1)
    )
    images = torch.randn(8, 1, 8, 8)
    with FlopCounterMode(display=False) as reference:
        net(images).sum().backward()
    with roofline.FlopCount() as counted:
        net(images).sum().backward()
    assert counted.total == reference.get_total_flops() > 0
    # R1: the gradient of D's output by its input, then its norm's gradient (a double backward)
    with roofline.FlopCount() as penalised:
        real = images.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(net(real).sum(), real, create_graph=True)
        gradient.pow(2).sum().backward()
    assert penalised.total > counted.total
    options = {"model": "mlp", "data": "digits", "width": 8, "z_dim": 8, "batch_size": 16}
    plain = roofline.iteration_flops(options)
    assert roofline.iteration_flops({**options, "r1": 1.0}) > plain > 0

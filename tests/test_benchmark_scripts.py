"""The benchmark scripts the README's speed figures come from still run (tiny settings here:
the figures themselves are measured by hand, never asserted on time)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

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
    done = script("roofline.py", "--configs", "dcgan-28", "--steps", "2", "--threads", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dcgan-28" in done.stdout and "%" in done.stdout

"""benchmarks/gpu_suite.sh must run unchanged the first time a GPU is lent: here (no GPU) its
dry run lists every part, a real run skips and names the CUDA parts, and the checkpoint
comparison its resume and DDP parts rely on tells equal runs from different ones."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import ganforge
from tiny import TINY_OPTIONS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_suite.sh"


def suite(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def load_suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_suite"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_lists_every_part_with_its_command(tmp_path):
    done = suite("--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for words in (
        "bench 28 px/1 ch fp32",
        "bench 64 px/3 ch bf16",
        "bench 64 px/3 ch fp16",
        "fp32 --compile",
        "bench 28 px/1 ch fp32 --reuse-fakes",
        "bench 64 px/3 ch fp32 --accumulate 4",
        "channels-last off",
        "fused Adam off",
        "roofline",
        "DDP NCCL 2 processes --sync-bn",
        "exact resume on CUDA",
    ):
        assert words in out, words
    assert "--precision bf16" in out and "--nproc-per-node 2" in out and "--resume" in out
    assert not (tmp_path / "gpu-suite.json").exists()  # a dry run writes nothing


def test_without_a_gpu_the_cuda_parts_are_skipped_and_named(tmp_path):
    done = suite("--only", "resume,DDP", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "gpu-suite.json").read_text())
    assert [r["part"] for r in rows] == [
        "DDP NCCL 2 processes --sync-bn = 1 process",
        "exact resume on CUDA (20 + 20 = 40 steps)",
    ]
    assert all(r["result"].startswith("skipped: needs") for r in rows)
    assert "| exact resume on CUDA" in done.stdout


def test_the_comparison_tells_equal_runs_from_different_ones(tmp_path, capsys):
    gpu_suite = load_suite()
    runs = {
        name: ganforge.train(**{**TINY_OPTIONS, "steps": 4, "seed": seed}, out=str(tmp_path / name))
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    }
    gpu_suite.compare_runs(runs["a"].path, runs["b"].path, 0.0)
    assert capsys.readouterr().out.startswith("same: ")
    gpu_suite.compare_runs(runs["a"].path, runs["c"].path, 0.0)
    assert capsys.readouterr().out.startswith("DIFFERENT: ")

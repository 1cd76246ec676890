"""The CI guard: GANFORGE_STRICT_SKIPS=1 turns any skip (in a test or at collection) into a
failed run that names the skip; without it a skip is a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

CASES = {
    "test_in_a_test.py": "import pytest\n\ndef test_a():\n    pytest.skip('no Chromium to drive')\n",
    "test_at_collection.py": (
        "import pytest\npytest.skip('needs the reference Inception weights',"
        " allow_module_level=True)\n"
    ),
    "test_skipif.py": (
        "import pytest\n\n@pytest.mark.skipif(True, reason='needs dataset-fashion-mnist')\n"
        "def test_b():\n    pass\n"
    ),
}


def _pytest(
    folder: Path, name: str, strict: bool, workers: tuple[str, ...] = ("-p", "no:xdist")
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GANFORGE_STRICT_SKIPS"}
    if strict:
        env["GANFORGE_STRICT_SKIPS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "pytest", "-p", "strict_skips", "-q", "-p", "no:cacheprovider"]
    command += workers
    return subprocess.run(
        [*command, "--rootdir", str(folder), str(folder / name), str(folder / "test_ok.py")],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_skip_fails_the_run_only_in_strict_mode(tmp_path, name):
    (tmp_path / name).write_text(CASES[name])
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    relaxed = _pytest(tmp_path, name, strict=False)
    assert relaxed.returncode == 0, relaxed.stdout
    strict = _pytest(tmp_path, name, strict=True)
    assert strict.returncode == 1, strict.stdout
    reason = CASES[name].split("'")[1]
    assert "SKIPPED -> FAILED" in strict.stdout and reason in strict.stdout


def test_the_guard_holds_when_the_tests_run_in_worker_processes(tmp_path):
    """CI runs the suite on pytest-xdist's workers: their skips reach the guard too."""
    name = "test_skipif.py"
    (tmp_path / name).write_text(CASES[name])
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    strict = _pytest(tmp_path, name, strict=True, workers=("-n", "2"))
    assert strict.returncode == 1, strict.stdout
    assert "SKIPPED -> FAILED" in strict.stdout and "needs dataset-fashion-mnist" in strict.stdout
    assert "bringing up nodes" in strict.stdout  # it did run on workers


def test_a_passing_run_stays_green_in_strict_mode(tmp_path):
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    assert _pytest(tmp_path, "test_ok.py", strict=True).returncode == 0


def test_a_failing_run_keeps_its_failure_code(tmp_path):
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    (tmp_path / "test_bad.py").write_text(
        "import pytest\n\ndef test_bad():\n    assert False\n\ndef test_s():\n    pytest.skip('x')\n"
    )
    assert _pytest(tmp_path, "test_bad.py", strict=True).returncode == 1

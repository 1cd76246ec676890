"""The mutation list (tools/mutants.toml) stays applicable, and the runner (tools/mutate.py)
tells a killed mutant from a survivor. Running the whole list is a habit, not a CI job:
`python tools/mutate.py` (see the README's Tests section)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_runner():
    spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


mutate = _load_runner()
MUTANTS = mutate.load_mutants()


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_every_mutant_still_applies_to_the_code(mutant):
    assert mutate.problems(mutant) == []


def test_the_list_covers_what_the_issue_asks_for():
    files = {m.file for m in MUTANTS}
    for area in (
        "src/ganforge/losses.py",
        "src/ganforge/training/loop.py",  # phase freezing
        "src/ganforge/training/ema.py",
        "src/ganforge/training/checkpoint.py",
        "src/ganforge/training/doctor/detectors.py",  # the doctor's thresholds
        "src/ganforge/metrics/frechet.py",
        "src/ganforge/metrics/prdc.py",
    ):
        assert area in files, f"no mutant in {area}"


def test_a_stale_mutant_is_named(tmp_path):
    stale = mutate.Mutant("gone", "src/ganforge/losses.py", "no such code", "x", ("tests/x.py",))
    found = mutate.problems(stale)
    assert any("occurs 0 times" in line for line in found)
    assert any("no test file tests/x.py" in line for line in found)


@pytest.mark.slow
def test_the_runner_tells_a_killed_mutant_from_a_survivor(capsys):
    test = "tests/test_losses.py::test_wasserstein_values"
    killed = mutate.Mutant(
        "wasserstein-sign",
        "src/ganforge/losses.py",
        "return fake_logits.mean() - real_logits.mean()",
        "return real_logits.mean() - fake_logits.mean()",
        (test,),
    )
    equivalent = mutate.Mutant(  # the same code with a comment: no test can kill it
        "a-comment",
        "src/ganforge/losses.py",
        "return fake_logits.mean() - real_logits.mean()",
        "return fake_logits.mean() - real_logits.mean()  # the same",
        (test,),
    )
    assert mutate.mutate([killed, equivalent], timeout=300) == 1
    out = capsys.readouterr().out
    assert f"wasserstein-sign: killed by {test}" in out
    assert "a-comment: SURVIVED" in out
    assert "2 mutants, 1 killed, 1 survived: a-comment" in out
    # the working tree is never touched
    assert "return fake_logits.mean() - real_logits.mean()\n" in (
        ROOT / "src/ganforge/losses.py"
    ).read_text()

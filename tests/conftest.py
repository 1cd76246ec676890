"""Shared fixtures: tiny training options, run folders under tmp_path, and small helpers.

Every training run in the suite uses tiny networks on the bundled `digits` dataset so the whole
suite stays fast on a 2-core CPU machine.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import pytest
import torch

import ganforge
from ganforge.data import load_dataset
from ganforge.i18n import set_language
from ganforge.training.logbook import WALL_CLOCK_FIELDS
from tiny import TINY_OPTIONS, translator_options

pytest_plugins = ["strict_skips"]  # GANFORGE_STRICT_SKIPS=1 (CI): a skipped test fails the run

# The networks here are tiny: one intra-op thread is the fastest setting, and it avoids the
# thread oversubscription that makes torch crawl on a shared 2-core CI machine.
torch.set_num_threads(int(os.environ.get("GANFORGE_TEST_THREADS", "1")))
# The suite reads English messages whatever the developer's locale (test_i18n switches).
os.environ["GANFORGE_LANG"] = "en"


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Cached real-data features and converted weights go to a temporary folder, never to the
    user's ~/.cache (ganforge/cache.py)."""
    old = os.environ.get("GANFORGE_CACHE")
    os.environ["GANFORGE_CACHE"] = str(tmp_path_factory.mktemp("ganforge-cache"))
    yield Path(os.environ["GANFORGE_CACHE"])
    if old is None:
        os.environ.pop("GANFORGE_CACHE", None)
    else:
        os.environ["GANFORGE_CACHE"] = old


@pytest.fixture(autouse=True)
def english_after_each_test():
    """A test that switches the language (`--lang es`, set_language) leaves English behind."""
    yield
    set_language(None)


@pytest.fixture
def tiny_options() -> dict:
    """Options for a training run of a few steps that takes well under a second."""
    return dict(TINY_OPTIONS)


@pytest.fixture
def tiny_train(tmp_path, tiny_options):
    """`tiny_train(name, **overrides)` trains a tiny run into tmp_path/name and returns its Run."""

    def _train(name: str = "run", **overrides) -> ganforge.Run:
        options = {**tiny_options, "out": str(tmp_path / name), **overrides}
        return ganforge.train(**options)

    return _train


@pytest.fixture
def model_options():
    """`model_options(model)`: the options a tiny run of `model` needs (translator_options)."""
    return translator_options


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> ganforge.Run:
    """A finished 10-step tiny run (checkpoints at 5 and 10) shared by read-only tests."""
    out = tmp_path_factory.mktemp("shared") / "run"
    return ganforge.train(**{**TINY_OPTIONS, "steps": 10, "checkpoint_every": 5, "out": str(out)})


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


def strip_wall_clock(records: list[dict]) -> list[dict]:
    """metrics.jsonl records without the fields that legitimately differ between reruns."""
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in records]


def snapshot_tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes), to prove a folder was not touched."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@pytest.fixture
def without_wall_clock():
    return strip_wall_clock


@pytest.fixture
def tree_snapshot():
    return snapshot_tree


@contextlib.contextmanager
def _during_generator_phase(call: int, action):
    """Inside the `call`-th generator phase (after D's update of that iteration, before G's,
    where a stop hurts resume the most) send this process signal `action`, or call it."""
    from ganforge.models.gan import GANFamily

    original = GANFamily.phase_loss
    calls = {"generator": 0}

    def wrapped(self, phase, batch):
        if phase == "generator":
            calls["generator"] += 1
            if calls["generator"] == call:
                os.kill(os.getpid(), action) if isinstance(action, int) else action()
        return original(self, phase, batch)

    GANFamily.phase_loss = wrapped
    try:
        yield
    finally:
        GANFamily.phase_loss = original


@pytest.fixture
def during_generator_phase():
    return _during_generator_phase


@pytest.fixture
def nan_generator_loss(monkeypatch):
    """`nan_generator_loss({7})` makes the GAN family's generator loss NaN on the 7th
    generator phase from now on ("all": on every one), until the test ends or
    `monkeypatch.undo()`; each call starts counting afresh."""
    from ganforge.models.gan import GANFamily

    original = GANFamily.phase_loss

    def inject(calls) -> None:
        count = {"generator": 0}

        def phase_loss(self, phase, batch):
            loss, stats = original(self, phase, batch)
            if phase == "generator":
                count["generator"] += 1
                if calls == "all" or count["generator"] in calls:
                    loss = loss * math.nan
            return loss, stats

        monkeypatch.setattr(GANFamily, "phase_loss", phase_loss)

    return inject

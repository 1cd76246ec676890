"""The app's run catalog: finding runs, refusing names it did not list, loading lazily,
caching, reloading after a new checkpoint, and one-line errors for runs that cannot load."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ganforge import GanforgeError
from ganforge.app.catalog import RunCatalog
from ganforge.models import Kind
from ganforge.run import Run

NO_CHECKPOINT, BROKEN = "problems/no-checkpoint", "problems/broken-config"  # conftest.py


def test_lists_runs_at_any_depth_sorted_and_a_run_folder_alone(runs_dir):
    assert RunCatalog(runs_dir).names() == ["cgan", "dcgan", "pix2pix", BROKEN, NO_CHECKPOINT]
    assert RunCatalog(runs_dir / "dcgan").names() == ["."]
    with pytest.raises(GanforgeError, match="not a folder"):
        RunCatalog(runs_dir / "nowhere").names()


@pytest.mark.parametrize("name", ["", "../dcgan", "/etc", "dcgan/checkpoints", "nothing"])
def test_only_listed_names_are_opened(runs_dir, name):
    with pytest.raises(GanforgeError, match="no run|not selected"):
        RunCatalog(runs_dir).open(name)


def test_loads_once_and_again_after_a_new_checkpoint(runs_dir, tmp_path):
    shutil.copytree(runs_dir / "dcgan", tmp_path / "dcgan")
    catalog = RunCatalog(tmp_path)
    first = catalog.load("dcgan")
    assert catalog.load("dcgan") is first
    assert first.family.kind == Kind() and not first.network.training
    newest = sorted((tmp_path / "dcgan" / "checkpoints").glob("step_*.safetensors"))[-1]
    later = newest.with_name("step_9999999.safetensors")
    shutil.copy(newest, later)
    os.utime(later, ns=(newest.stat().st_mtime_ns + 10**9,) * 2)
    assert catalog.load("dcgan") is not first


def test_runs_that_cannot_load_say_why(runs_dir, tmp_path, monkeypatch):
    catalog = RunCatalog(runs_dir)
    with pytest.raises(GanforgeError, match="no checkpoint yet"):
        catalog.load(NO_CHECKPOINT)
    with pytest.raises(GanforgeError, match="not valid JSON"):
        catalog.load(BROKEN)
    shutil.copytree(runs_dir / "dcgan", tmp_path / "dcgan")
    config = json.loads((tmp_path / "dcgan" / "config.json").read_text())
    (tmp_path / "dcgan" / "config.json").write_text(json.dumps({**config, "width": 16}))
    with pytest.raises(GanforgeError, match="does not match network"):
        RunCatalog(tmp_path).load("dcgan")

    def fails(self, checkpoint=None):
        raise RuntimeError("a failure ganforge did not foresee\nsecond line")

    monkeypatch.setattr(Run, "load", fails)
    with pytest.raises(GanforgeError, match="'dcgan' could not be loaded: RuntimeError") as caught:
        RunCatalog(runs_dir).load("dcgan")
    assert "\n" not in str(caught.value)


def test_symlinks_out_of_runs_dir_are_not_followed(runs_dir, tmp_path):
    """A linked folder is not searched, and a run holding a link to anything outside it (its
    config.json, checkpoints/, one checkpoint) is not listed, so it cannot be opened; a link
    that stays inside its run is fine."""
    outside, root = tmp_path / "outside", tmp_path / "runs"
    shutil.copytree(runs_dir / "dcgan", outside / "dcgan")
    shutil.copytree(runs_dir / "dcgan", root / "plain")
    os.symlink(outside / "dcgan", root / "linked-run")
    os.symlink(outside, root / "linked-group")
    for name in ("linked-config", "linked-checkpoints", "linked-checkpoint", "inner-link"):
        shutil.copytree(runs_dir / "dcgan", root / name)
    (root / "linked-config" / "config.json").unlink()
    os.symlink(outside / "dcgan" / "config.json", root / "linked-config" / "config.json")
    shutil.rmtree(root / "linked-checkpoints" / "checkpoints")
    os.symlink(outside / "dcgan" / "checkpoints", root / "linked-checkpoints" / "checkpoints")
    newest = sorted((outside / "dcgan" / "checkpoints").glob("step_*.safetensors"))[-1]
    os.symlink(newest, root / "linked-checkpoint" / "checkpoints" / "step_9999999.safetensors")
    inner = root / "inner-link" / "checkpoints"
    os.symlink(sorted(inner.glob("step_*.safetensors"))[-1], inner / "step_9999999.safetensors")
    catalog = RunCatalog(root)
    assert catalog.names() == ["inner-link", "plain"]
    for name in ("linked-run", "linked-group/dcgan", "linked-config", "linked-checkpoint"):
        with pytest.raises(GanforgeError, match="there is no run"):
            catalog.open(name)
    assert RunCatalog(root / "linked-config").run_names() == []  # RUNS_DIR itself one run
    assert RunCatalog(root / "plain").names() == ["."]


def test_the_page_opens_on_the_first_run_that_can_load(runs_dir, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs_dir / "dcgan", root / "z-trained")
    shutil.copytree(runs_dir / NO_CHECKPOINT, root / "a-no-checkpoint")
    shutil.copytree(runs_dir / BROKEN, root / "b-broken")
    catalog = RunCatalog(root)
    names = catalog.names()
    assert names[0] == "a-no-checkpoint"  # sorted first, but it has nothing to show
    assert catalog.first_loadable(names) == "z-trained"
    assert catalog.first_loadable(["a-no-checkpoint", "b-broken"]) == "a-no-checkpoint"
    assert catalog.first_loadable([]) is None


def test_an_empty_folder_serves_the_zoo_and_a_folder_with_runs_does_not(tmp_path, runs_dir):
    from ganforge import zoo

    catalog = RunCatalog(tmp_path)
    names = catalog.names()
    assert names == [f"zoo:{name}" for name in zoo.RECIPES]
    assert catalog.path("zoo:cgan-mnist") == zoo.folder("cgan-mnist")
    assert catalog.first_loadable(names) == "zoo:dcgan-mnist"  # exported weights count
    loaded = catalog.load("zoo:dcgan-mnist")
    assert loaded.family.kind.draws_from_noise
    with_runs = RunCatalog(runs_dir)
    assert not any(name.startswith("zoo:") for name in with_runs.names())
    with pytest.raises(GanforgeError, match="no run 'zoo:dcgan-mnist'"):
        with_runs.path("zoo:dcgan-mnist")

"""The zoo: generators that ship with ganforge. Each entry loads by `zoo:NAME` wherever a run is
taken, its card states the recipe and the hash of the config it holds, its files are package
data, and its recorded recipe still trains (rebuilt here at a tiny budget, giving the same
config and the same network)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge import GanforgeError, TrainConfig, zoo
from ganforge.cli import main
from ganforge.run import Run

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_OPTIONS = ("out", "progress", "steps")  # how a recipe was run, not what it makes


def test_every_recipe_ships_with_its_card():
    assert zoo.entries() == list(zoo.RECIPES)
    for name, recipe in zoo.RECIPES.items():
        folder = zoo.folder(name)
        config = (folder / "config.json").read_text(encoding="utf-8")
        card = (folder / "README.md").read_text(encoding="utf-8")
        digest = hashlib.sha256(json.dumps(json.loads(config), sort_keys=True).encode())
        assert f"Config SHA-256: `{digest.hexdigest()}`" in card, name
        assert recipe.train in card and f"ganforge eval RUN {recipe.evaluate}" in card, name
        assert "| fid |" in card, name  # the eval numbers
        assert json.loads(config)["steps"] == 1500


def test_the_zoo_files_are_package_data():
    """Every file of every entry is matched by pyproject's package-data (or a wheel lacks it)."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11 reads TOML")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["ganforge"]
    package = ROOT / "src" / "ganforge"
    for name in zoo.entries():
        for file in zoo.folder(name).iterdir():
            relative = file.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_zoo_names_work_wherever_a_run_is_taken(tmp_path, capsys):
    generator = ganforge.load_generator("zoo:dcgan-mnist")
    images = generator.sample(4, seed=3)
    assert images.shape == (4, 28, 28, 1) and images.std() > 20
    assert (
        main(
            [
                "sample",
                "zoo:dcgan-mnist",
                "--n",
                "4",
                "--seed",
                "3",
                "--out",
                str(tmp_path / "s.npz"),
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "s.npz")["images"], images)
    assert (
        main(
            [
                "sample",
                "zoo:cgan-mnist",
                "--classes",
                "7",
                "--n",
                "2",
                "--out",
                str(tmp_path / "c.png"),
            ]
        )
        == 0
    )
    assert main(["sample", "zoo:no-such", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "zoo:no-such" in err and "zoo:dcgan-mnist" in err and err.count("\n") == 1
    with pytest.raises(GanforgeError, match="not in the zoo"):
        Run("zoo:")


def test_evaluating_a_zoo_entry_writes_nothing_into_the_package(capsys, tree_snapshot):
    before = tree_snapshot(zoo.FOLDER)
    assert (
        main(["eval", "zoo:dcgan-mnist", "--n", "200", "--metrics", "modes", "--no-progress"])
        == 0
    )
    assert "ships with ganforge" in capsys.readouterr().out
    assert tree_snapshot(zoo.FOLDER) == before


@pytest.mark.slow
def test_a_recipe_still_trains_the_same_network(tmp_path):
    """dcgan-mnist's recorded command, at 2 steps: the config it writes is the entry's (but for
    how it was run), and the entry's weights fit the network it builds."""
    recipe = zoo.RECIPES["dcgan-mnist"]
    words = shlex.split(recipe.train)
    assert words[:2] == ["ganforge", "train"]
    out = tmp_path / "rebuilt"
    assert main([*words[1:], "--steps", "2", "--out", str(out), "--no-progress"]) == 0

    def made(config: dict) -> dict:
        return {k: v for k, v in config.items() if k not in RUNTIME_OPTIONS}

    shipped = json.loads((zoo.folder(recipe.name) / "config.json").read_text())
    # options added since the entry was made take their defaults, as loading the entry does
    as_loaded = TrainConfig.from_dict(shipped).to_dict()
    assert made(json.loads((out / "config.json").read_text())) == made(as_loaded)
    rebuilt = Run(out)
    rebuilt.load()
    network = rebuilt.generator()
    weights = load_file(str(zoo.folder(recipe.name) / "model.safetensors"))
    expected = {k: v.shape for k, v in network.state_dict().items()}
    assert {k: v.shape for k, v in weights.items()} == expected
    network.load_state_dict(weights)
    with torch.no_grad():
        assert torch.isfinite(network.eval()(torch.randn(2, shipped["z_dim"]))).all()

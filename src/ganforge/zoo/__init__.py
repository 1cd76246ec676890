"""A zoo of small generators that ganforge trained itself, shipped inside the package.

Each entry is an exported folder (model.safetensors, config.json, a model card README.md; see
`ganforge.export`) made by one recorded recipe: the `ganforge train` command and the `ganforge
eval` options in RECIPES. `tools/build_zoo.py` runs the recipes and exports the folders; the
card carries the command, the config's SHA-256 and the eval numbers. Any command that takes a
run folder takes `zoo:NAME` too: `ganforge sample zoo:dcgan-mnist`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import GanforgeError

PREFIX = "zoo:"
FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Recipe:
    """How an entry was made: `train` is the full `ganforge train` command (no --out),
    `evaluate` the options of the `ganforge eval` run on it."""

    name: str
    what: str
    train: str
    evaluate: str


RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "dcgan-mnist",
            "DCGAN, handwritten digits 0-9 (28 px)",
            "ganforge train --model dcgan --data mnist-mini",
            "--n 10000 --metrics fid,kid,pr,dc,modes",
        ),
        Recipe(
            "cgan-mnist",
            "conditional GAN, the digit you ask for (28 px)",
            "ganforge train --model cgan --data mnist-mini",
            "--n 10000 --metrics fid,kid,pr,dc,modes",
        ),
        Recipe(
            "dcgan-fashion",
            "DCGAN, Fashion-MNIST clothes (28 px)",
            "ganforge train --model dcgan --data fashion-mnist",
            "--n 10000 --metrics fid,kid,modes",
        ),
    )
}


def folder(name: str) -> Path:
    """The entry's folder inside the package (which may not be built yet)."""
    return FOLDER / name


def entries() -> list[str]:
    """The names of the entries that ship (their folder holds weights)."""
    return [name for name in RECIPES if (folder(name) / "model.safetensors").is_file()]


def is_zoo(path: str | Path) -> bool:
    return str(path).startswith(PREFIX)


def resolve(path: str | Path) -> Path:
    """`zoo:NAME` -> the entry's folder; any other path as given."""
    if not is_zoo(path):
        return Path(path)
    name = str(path)[len(PREFIX) :]
    if name not in entries():
        known = ", ".join(PREFIX + n for n in entries()) or "none: this install has no zoo"
        raise GanforgeError(f"RUN: '{path}' is not in the zoo (it has {known})")
    return folder(name)

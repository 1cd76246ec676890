"""Build the zoo (src/ganforge/zoo/NAME/): run each recipe's `ganforge train` command, its
`ganforge eval`, and `ganforge export --format folder` into the package.

    python tools/build_zoo.py --runs DIR [NAME ...]

A run already in DIR/NAME is reused when it finished with the recipe's config (a run with
another config is refused, never overwritten); an eval.json in it is reused too. The entry's
folder is replaced only once the new export is complete. One thread per command is plenty:
each recipe takes 5-7 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ganforge import zoo
from ganforge.run import Run

# how a recipe is run, not what it makes: left out when a run's config is compared to a recipe
RUNTIME_OPTIONS = ("out", "progress")


def ganforge(*words: str) -> None:
    command = [sys.executable, "-m", "ganforge", *words]
    print("$", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def recipe_command(recipe: zoo.Recipe, out: Path, *extra: str) -> list[str]:
    """The recipe's train command (without `ganforge`) writing to `out`."""
    return [*shlex.split(recipe.train)[1:], *extra, "--out", str(out), "--no-progress"]


def comparable(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in RUNTIME_OPTIONS}


def zoo_section(recipe: zoo.Recipe) -> str:
    """The card's last section: the recipe as written (the card's own command lists only the
    options that differ from the model's defaults)."""
    return "\n".join(
        [
            "",
            "## In ganforge's zoo",
            "",
            f"`zoo:{recipe.name}`: {recipe.what}. Made by `python tools/build_zoo.py {recipe.name}`:",
            "",
            "```bash",
            recipe.train,
            f"ganforge eval RUN {recipe.evaluate}",
            "```",
            "",
        ]
    )


def build(recipe: zoo.Recipe, runs: Path) -> Path:
    run_folder = runs / recipe.name
    started = time.perf_counter()
    if not (run_folder / "config.json").is_file():
        ganforge(*recipe_command(recipe, run_folder))
    run = Run(run_folder)
    if run.step < run.config.steps:
        ganforge("train", "--resume", str(run_folder), "--no-progress")
        run = Run(run_folder)
    fresh = runs / f".{recipe.name}.config-check"
    shutil.rmtree(fresh, ignore_errors=True)
    ganforge(*recipe_command(recipe, fresh, "--steps", "1"))  # the config the recipe gives
    expected = comparable({**Run(fresh).config.to_dict(), "steps": run.config.steps})
    shutil.rmtree(fresh)
    if comparable(run.config.to_dict()) != expected:
        raise SystemExit(f"{run_folder}: its config is not the recipe's; move it away")
    if not (run_folder / "eval.json").is_file():
        ganforge("eval", str(run_folder), *shlex.split(recipe.evaluate), "--no-progress")
    target = zoo.folder(recipe.name)
    partial = target.with_name(f".{recipe.name}.new")
    shutil.rmtree(partial, ignore_errors=True)
    ganforge("export", str(run_folder), "--format", "folder", "--out", str(partial))
    card = partial / "README.md"
    card.write_text(card.read_text(encoding="utf-8") + zoo_section(recipe), encoding="utf-8")
    old = target.with_name(f".{recipe.name}.old")
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    size = sum(f.stat().st_size for f in target.iterdir()) / 2**20
    print(f"{recipe.name}: {target} ({size:.1f} MiB) in {time.perf_counter() - started:.0f} s")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"entries (default: all: {', '.join(zoo.RECIPES)})"
    )
    parser.add_argument("--runs", required=True, type=Path, help="where the runs are kept")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in zoo.RECIPES]
    if unknown:
        raise SystemExit(f"unknown entries: {', '.join(unknown)} (known: {', '.join(zoo.RECIPES)})")
    for name in args.names or zoo.RECIPES:
        build(zoo.RECIPES[name], args.runs)


if __name__ == "__main__":
    main()

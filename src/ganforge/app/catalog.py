"""The runs the app serves: found under one folder, loaded when first asked for, kept loaded.

A run is any folder holding a config.json (at most MAX_DEPTH levels down; the folder itself
when it is one run); when RUNS_DIR holds none yet, the page serves the zoo's generators
(`zoo:NAME`, shipped with the package) instead. Symbolic links are not followed out of
RUNS_DIR: a linked folder is not searched, and a run folder holding a link to anything outside
it (its config.json, its checkpoints, a checkpoint file, ...) is not listed, so the page reads
nothing the folder does not hold. Loading reads config.json and safetensors only (Run.load),
never code from the run folder. A run is loaded again when its newest checkpoint changes (a run
still training), and at most CACHE_SIZE runs stay in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ganforge import zoo
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily
from ganforge.run import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EXPORTED_WEIGHTS,
    SAMPLES_DIR,
    TENSORBOARD_DIR,
    Run,
)

MAX_DEPTH = 3
CACHE_SIZE = 8
_NOT_RUNS = {CHECKPOINT_DIR, SAMPLES_DIR, TENSORBOARD_DIR}


@dataclass
class LoadedRun:
    """A run with its weights: the family, the sampling network (EMA copy when kept, eval
    mode, CPU), and results worth keeping while it stays loaded (latent directions)."""

    name: str
    run: Run
    family: ModelFamily
    network: nn.Module
    saved: dict = field(default_factory=dict)


class RunCatalog:
    """Run folders under `root`, by name (their path relative to `root`, "." for `root`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._loaded: OrderedDict[str, tuple[tuple, LoadedRun]] = OrderedDict()
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The runs found now, sorted by name; the zoo's generators (`zoo:NAME`) when there is
        none yet, so a newcomer's page works at once. An error when `root` is not a folder."""
        return self.run_names() or [zoo.PREFIX + name for name in zoo.entries()]

    def run_names(self) -> list[str]:
        """The runs under `root` alone."""
        if not self.root.is_dir():
            raise GanforgeError(f"RUNS_DIR: '{self.root}' is not a folder")
        if (self.root / CONFIG_FILE).is_file():
            return ["."] if _stays_inside(self.root) else []
        found = []
        for config in self._configs(self.root, MAX_DEPTH):
            found.append(config.parent.relative_to(self.root).as_posix())
        return sorted(found)

    def _configs(self, folder: Path, depth: int) -> list[Path]:
        try:
            children = sorted(folder.iterdir())
        except OSError:
            return []
        configs = []
        for child in children:
            if child.name.startswith(".") or child.name in _NOT_RUNS:
                continue
            if child.is_symlink() or not child.is_dir():
                continue
            if (child / CONFIG_FILE).is_file():
                if _stays_inside(child):
                    configs.append(child / CONFIG_FILE)
            elif depth > 1:
                configs += self._configs(child, depth - 1)
        return configs

    def path(self, name: str) -> Path:
        """The folder of run `name`; only names that `names()` lists are accepted, so that a
        request cannot reach outside `root`."""
        if not name:
            raise GanforgeError("no run is selected")
        if name not in self.names():
            raise GanforgeError(f"there is no run '{name}' in '{self.root}'")
        return zoo.resolve(name) if zoo.is_zoo(name) else self.root / name

    def first_loadable(self, names: list[str]) -> str | None:
        """Where the page opens: the first of `names` whose config reads and that has a
        checkpoint (weights are not loaded here); the first name if none has."""
        for name in names:
            try:
                if _newest_checkpoint(self.open(name)):
                    return name
            except GanforgeError:
                continue
        return names[0] if names else None

    def open(self, name: str) -> Run:
        """Run `name`'s config and files, without its weights (enough for its report)."""
        return Run(self.path(name))

    def load(self, name: str) -> LoadedRun:
        """Run `name` with its newest weights; cached until a newer checkpoint appears. Any
        failure becomes a GanforgeError saying which run could not be loaded and why."""
        run = self.open(name)
        key = _newest_checkpoint(run)
        with self._lock:
            cached = self._loaded.get(name)
            if cached is not None and cached[0] == key:
                self._loaded.move_to_end(name)
                return cached[1]
        try:
            family = run.load()
            network = run.generator(ema=True)
        except GanforgeError:
            raise
        except Exception as exc:  # weights that do not fit the config, a damaged file, ...
            raise GanforgeError(
                f"run '{name}' could not be loaded: {type(exc).__name__}: {exc}"
            ) from None
        loaded = LoadedRun(name, run, family, network)
        with self._lock:
            self._loaded[name] = (key, loaded)
            self._loaded.move_to_end(name)
            while len(self._loaded) > CACHE_SIZE:
                self._loaded.popitem(last=False)
        return loaded


def _stays_inside(folder: Path) -> bool:
    """Whether no entry of run `folder`, nor of a folder in it (checkpoints/, samples/, ...), is
    a symbolic link to somewhere outside `folder`."""
    try:
        inside = folder.resolve()
        entries = list(folder.iterdir())
        for entry in list(entries):
            if entry.is_dir() and not entry.is_symlink():
                entries += entry.iterdir()
        return all(
            entry.resolve().is_relative_to(inside) for entry in entries if entry.is_symlink()
        )
    except (OSError, RuntimeError):  # unreadable, or a loop of links
        return False


def _newest_checkpoint(run: Run) -> tuple:
    """What identifies the weights `run.load()` would read now."""
    found = run.checkpoints
    if not found and not run.exported:
        return ()
    path = found[-1][1] if found else run.path / EXPORTED_WEIGHTS
    try:
        stat = path.stat()
    except OSError:
        return (str(path),)
    return (str(path), stat.st_mtime_ns, stat.st_size)

"""Where dataset files live: the data root (flag, then $GANFORGE_DATA, then the user cache),
then the system location where distributions install datasets (Debian: /usr/share/datasets).

Each dataset has its own sub-folder under its official file names: ROOT/mnist/, ROOT/cifar10/ ...
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "GANFORGE_DATA"
DEFAULT_DATA_ROOT = Path("~/.cache/ganforge/datasets")
# Debian's dataset-fashion-mnist package installs the official IDX files in
# /usr/share/datasets/fashion-mnist/; other dataset-* packages follow the same layout.
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)


def data_root(explicit: str | Path | None = None) -> Path:
    """The folder downloads go to and files are looked for first: --data-root, then
    $GANFORGE_DATA, then ~/.cache/ganforge/datasets."""
    chosen = explicit or os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT
    return Path(chosen).expanduser()


def dataset_dirs(name: str, root: str | Path | None = None) -> list[Path]:
    """The folders that may hold dataset `name`, in the order they are searched."""
    return [data_root(root) / name, *(system / name for system in SYSTEM_DATA_DIRS)]

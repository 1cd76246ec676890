"""ganforge's user cache: $GANFORGE_CACHE, else $XDG_CACHE_HOME/ganforge, else ~/.cache/ganforge.

Sub-folders by kind: `weights/` (converted feature-extractor weights), `stats/` (features of
real datasets, keyed by a hash of the data and the extractor). Everything here can be deleted;
it is recomputed on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GANFORGE_CACHE"


def cache_dir(kind: str) -> Path:
    """The cache folder for `kind` (not created)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path("~/.cache").expanduser()
    return base / "ganforge" / kind

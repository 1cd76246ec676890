"""Config files: TOML, JSON or YAML in, a mapping of options out (validated by TrainConfig)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from ganforge.config.train_config import normalise_keys
from ganforge.errors import GanforgeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML config file into a mapping (validated later, merged with CLI
    flags). A syntax error names the file and its line."""
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"--config: no such file '{path}'")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ".yaml", ".yml"):
        raise GanforgeError(f"--config: '{path}' must end in .toml, .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".toml":
            values = tomllib.loads(text)
        elif suffix == ".json":
            values = json.loads(text)
        else:
            values = yaml.load(text, Loader=_ConfigLoader)  # plain data: no tags, no aliases
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise GanforgeError(
            f"--config: cannot parse '{path}' (line {line}): {exc.problem}"
        ) from None
    except (
        tomllib.TOMLDecodeError,
        json.JSONDecodeError,
        yaml.YAMLError,
        UnicodeDecodeError,
        ValueError,
        RecursionError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GanforgeError(f"--config: cannot parse '{path}': {reason}") from None
    if not isinstance(values, dict):
        raise GanforgeError(f"--config: '{path}' must hold a table of options")
    return normalise_keys(values, f"--config '{path}'")


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader (plain data only: no tags that build objects) that also refuses
    aliases: a config has no use for them, and ten lines of nested aliases (a "billion laughs")
    make a value whose every traversal (printing, hashing, JSON) takes forever."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed in a config file",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)

"""How a config's values are checked: each error names the flag (--lr-g) a user would fix."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ganforge.errors import GanforgeError, brief


def flag_name(option: str) -> str:
    """The CLI spelling of a config field: lr_g -> --lr-g."""
    return "--" + option.replace("_", "-")


def option_error(option: str, message: str) -> GanforgeError:
    return GanforgeError(f"{flag_name(option)}: {message}")


def check_choice(values: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(values, name)
    if value not in choices:
        raise option_error(name, f"'{value}' is not one of {', '.join(choices)}")


def check_at_least(values: Any, names: tuple[str, ...], low: float, what: str = "") -> None:
    """Each option in `names` is at least `low` ("must be at least 1", or `what` instead)."""
    for name in names:
        value = getattr(values, name)
        if value < low:
            raise option_error(name, f"{what or f'must be at least {low:g}'}, got {value}")


def check_in_range(values: Any, names: tuple[str, ...], low: float, high: float, text: str):
    """Each option in `names` lies in [low, high] (`text`: the interval as the error says it)."""
    for name in names:
        value = getattr(values, name)
        if not low <= value <= high:
            raise option_error(name, f"must be in {text}, got {value}")


def check_types(values: Any) -> None:
    """Coerce ints to floats where floats are expected; reject wrong types from config files.
    `values` is a dataclass instance (the config, or a model's own options)."""
    for f in dataclasses.fields(values):
        value = getattr(values, f.name)
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind.startswith("ModelOptions"):
            continue
        if value is None and "None" in kind:
            continue
        if kind.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 2**1023:
                raise option_error(f.name, f"{brief(value)} is too large a number")
            setattr(values, f.name, float(value))
        elif kind.startswith("float") and not isinstance(value, float):
            raise option_error(f.name, f"expected a number, got {brief(value)}")
        elif kind.startswith("float") and not math.isfinite(value):
            raise option_error(f.name, f"must be a finite number, got {value}")
        elif kind.startswith("int") and (not isinstance(value, int) or isinstance(value, bool)):
            raise option_error(f.name, f"expected an integer, got {brief(value)}")
        elif kind.startswith("str") and not isinstance(value, str):
            raise option_error(f.name, f"expected a string, got {brief(value)}")
        elif kind == "bool" and not isinstance(value, bool):
            raise option_error(f.name, f"expected true or false, got {brief(value)}")
        elif kind.startswith("list") and not isinstance(value, list):
            raise option_error(f.name, f"expected a list, got {brief(value)}")
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not _is_utf8(text):
                # a path such as b'caf\xe9' from a Latin-1 disk: config.json (UTF-8) cannot
                # hold it, so the run could never finish, resume or be reported
                raise option_error(
                    f.name, f"{brief(_raw_bytes(text))} is not valid UTF-8 text; rename it"
                )


def _raw_bytes(text: str) -> bytes:
    """The bytes a file name decoded with surrogateescape came from (os.fsencode's)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape, not from bytes
        return text.encode("utf-8", "backslashreplace")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes of a file name
        return False
    return True

"""The command line's argparse layer, without torch: the parser class that answers a misspelt
command or flag with the nearest ones, and the parser's shape kept as JSON in the user cache.

Building the real parser needs every model's options, and the models import torch (a second
or two). So after a command has run once, its parser's shape is in the cache
(CACHE_KIND/PARSER-FINGERPRINT.json, the fingerprint naming ganforge's version and its source
files' sizes and times): `ganforge ... --help` and argument errors are then answered from it
without importing torch, and a valid command goes on to the real parser. A changed source
file, a plugin (--plugin), a cache that cannot be read or written: the real parser, as before.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ganforge.cache import cache_dir
from ganforge.i18n import _

CACHE_KIND = "cli"
FORMAT = 1  # the shape's layout: a new layout is a new file
# argparse's action classes a shape can hold, by name (the parser uses only these)
ACTIONS = {
    argparse._StoreAction: "store",
    argparse._StoreConstAction: "store_const",
    argparse._StoreTrueAction: "store_true",
    argparse._StoreFalseAction: "store_false",
    argparse._AppendAction: "append",
    argparse._CountAction: "count",
}
TYPES = {None: None, int: "int", float: "float", str: "str"}
FORMATTERS = {
    cls.__name__: cls
    for cls in (
        argparse.HelpFormatter,
        argparse.RawDescriptionHelpFormatter,
        argparse.RawTextHelpFormatter,
        argparse.ArgumentDefaultsHelpFormatter,
    )
}


class Parser(argparse.ArgumentParser):
    """argparse that answers a misspelt command or choice with the nearest ones ("did you
    mean"); misspelt flags are answered by unknown_flags, by the command they were given to."""

    def error(self, message: str) -> NoReturn:
        choice = re.search(r"invalid choice: '?([^' ]*)'? \(choose from (.*)\)", message)
        if choice:
            options = [option.strip("' ") for option in choice.group(2).split(",")]
            hint = did_you_mean(choice.group(1), options)
            message += f" ({hint})" if hint else ""
        super().error(message)


def did_you_mean(given: str, known: Sequence[str]) -> str:
    """'did you mean --lr-g?' naming the nearest of `known` (at most two); '' if none is near."""
    near = difflib.get_close_matches(given, known, n=2, cutoff=0.6)
    return _("did you mean {options}?").format(options=_(" or ").join(near)) if near else ""


def unknown_flags(parser: argparse.ArgumentParser, args, extras: list[str]) -> NoReturn:
    """One error from the command the flags were given to, with its own usage and, for each
    misspelt flag, the nearest flags that command takes."""
    command = parser
    while command._subparsers is not None:  # the chosen command, then its action
        (choices,) = command._subparsers._group_actions
        command = choices.choices[getattr(args, choices.dest)]
    flags = [s for action in command._actions for s in action.option_strings if s[:2] == "--"]
    given = [extra.split("=")[0] for extra in extras if extra.startswith("-")]
    hints = {flag: hint for flag in given if (hint := did_you_mean(flag, flags))}
    message = _("unrecognized arguments: {extras}").format(extras=" ".join(extras))
    if len(given) == 1 and hints:
        message += f" ({hints[given[0]]})"
    elif hints:  # say which flag each hint is for
        message += " (" + "; ".join(f"{flag}: {hint}" for flag, hint in hints.items()) + ")"
    command.error(message)


def option_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of `FLAG VALUE` (or `FLAG=VALUE`) among the arguments, if any: what must be
    known before a parser is built (--lang, --plugin)."""
    for i, argument in enumerate(argv):
        if argument == flag and i + 1 < len(argv):
            return argv[i + 1]
        if argument.startswith(f"{flag}="):
            return argument.split("=", 1)[1]
    return None


# ---- the parser's shape ---------------------------------------------------------------------


class Unshapeable(Exception):
    """The parser holds something a shape cannot (an action class or type of its own)."""


def shape(parser: argparse.ArgumentParser) -> dict:
    """`parser` (and its sub-commands) as plain JSON-able data: what rebuild() needs to make a
    parser with the same help, usage, errors and parse results."""
    groups = parser._action_groups
    return {
        "prog": parser.prog,
        "usage": parser.usage,
        "description": parser.description,
        "epilog": parser.epilog,
        "formatter": _formatter_name(parser.formatter_class),
        "groups": [{"title": g.title, "description": g.description} for g in groups],
        "actions": [
            _action_shape(action, groups)
            for action in parser._actions
            if not isinstance(action, argparse._HelpAction)
        ],
    }


def _formatter_name(formatter: type) -> str:
    if FORMATTERS.get(formatter.__name__) is not formatter:
        raise Unshapeable(f"formatter {formatter.__name__}")
    return formatter.__name__


def _group_of(action: argparse.Action, groups: list) -> int:
    return next(i for i, g in enumerate(groups) if action in g._group_actions)


def _action_shape(action: argparse.Action, groups: list) -> dict:
    common = {
        "group": _group_of(action, groups),
        "dest": action.dest,
        "help": action.help,
        "metavar": list(action.metavar) if isinstance(action.metavar, tuple) else action.metavar,
        "required": action.required,
    }
    if isinstance(action, argparse._SubParsersAction):
        names: dict[int, list[str]] = {}
        for name, command in action.choices.items():
            names.setdefault(id(command), []).append(name)
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        commands = []
        for command in dict.fromkeys(action.choices.values()):
            first, *aliases = names[id(command)]
            listed = {"help": helps[first]} if first in helps else {}  # no help: not listed
            commands.append({"name": first, "aliases": aliases, "listed": listed, **shape(command)})
        return {"kind": "subparsers", **common, "commands": commands}
    kind = ACTIONS.get(type(action))
    if kind is None or action.type not in TYPES:
        raise Unshapeable(f"{action.dest}: {type(action).__name__}, type {action.type}")
    json.dumps([action.default, action.const, action.choices])  # TypeError: not plain data
    return {
        "kind": kind,
        **common,
        "option_strings": list(action.option_strings),
        "nargs": action.nargs,
        "const": action.const,
        "default": action.default,
        "type": TYPES[action.type],
        "choices": None if action.choices is None else list(action.choices),
    }


def rebuild(spec: dict, parser: argparse.ArgumentParser | None = None) -> Parser:
    """A Parser from shape()'s data (`parser`: one made by a sub-command action, to fill)."""
    if parser is None:
        parser = Parser(prog=spec["prog"])
    parser.usage, parser.description, parser.epilog = (
        spec["usage"],
        spec["description"],
        spec["epilog"],
    )
    parser.formatter_class = FORMATTERS[spec["formatter"]]
    groups = parser._action_groups  # the first two: positionals and options
    for group in spec["groups"][len(groups) :]:
        parser.add_argument_group(group["title"], group["description"])
    for group, saved in zip(groups[:2], spec["groups"]):  # a renamed default group
        group.title, group.description = saved["title"], saved["description"]
    types = {name: kind for kind, name in TYPES.items()}
    for action in spec["actions"]:
        group = parser._action_groups[action["group"]]
        metavar = action["metavar"]
        metavar = tuple(metavar) if isinstance(metavar, list) else metavar
        if action["kind"] == "subparsers":
            sub = parser.add_subparsers(
                dest=action["dest"], required=action["required"], metavar=metavar
            )
            for command in action["commands"]:
                child = sub.add_parser(
                    command["name"],
                    aliases=command["aliases"],
                    prog=command["prog"],
                    **command["listed"],
                )
                rebuild(command, child)
            continue
        options = {
            "dest": action["dest"],
            "help": action["help"],
            "required": action["required"],
            "default": action["default"],
        }
        if action["kind"] in ("store", "append"):
            options.update(
                nargs=action["nargs"],
                const=action["const"],
                type=types[action["type"]],
                choices=action["choices"],
                metavar=metavar,
            )
        elif action["kind"] == "store_const":
            options.update(const=action["const"], metavar=metavar)
        flags = action["option_strings"]
        if not flags:  # a positional: its dest is its name
            options.pop("dest")
            options.pop("required")
            flags = [action["dest"]]
        group.add_argument(*flags, action=action["kind"], **options)
    return parser


# ---- the cache ------------------------------------------------------------------------------


def fingerprint() -> str:
    """ganforge's version and its source files (names, sizes, modification times): a shape
    made by other code is another file."""
    import ganforge

    package = Path(ganforge.__file__).parent
    digest = hashlib.sha256(f"{FORMAT}:{ganforge.__version__}".encode())
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def cache_file() -> Path:
    return cache_dir(CACHE_KIND) / f"parser-{fingerprint()}.json"


def cached_parser() -> Parser | None:
    """The parser rebuilt from the cache, in English (cli_words translates it); None when the
    cache has no shape for this code, or an unreadable one."""
    try:
        spec = json.loads(cache_file().read_text(encoding="utf-8"))
        return rebuild(spec)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def remember(build) -> None:
    """Keep the shape of `build()` (the real parser, made in English) for the next commands,
    unless it is kept already, and drop the shapes of other code (one per code change would
    pile up); a cache that cannot be written is left alone."""
    path = cache_file()
    if path.is_file():
        return
    try:
        text = json.dumps(shape(build()))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        for stale in path.parent.glob("parser-*.json"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except (OSError, Unshapeable, TypeError):
        return

"""MkDocs hook: the `ganforge` command-line reference, generated from the real argparse parser.

A page that holds the line `<!-- ganforge-cli-reference -->` gets, in its place, one section per
command and sub-command (`ganforge train`, `ganforge latent interp`, ...): its description, its
usage, and a table of its options (flag, default, help) per argument group, all read from
`ganforge.cli.build_parser()` on every build, so the reference is never written by hand and
cannot drift from the CLI. Each language's page shows the CLI's texts in that language, as
`ganforge ... --help --lang es` prints them (ganforge.cli_words).
"""

from __future__ import annotations

import argparse
import functools
import html
import re
from collections.abc import Iterator

MARKER = "<!-- ganforge-cli-reference -->"
USAGE_WIDTH = 80  # columns of the usage blocks (the page's width), whatever terminal builds it
# a help text's trailing "(default: X)" or "(default: X; cgan, acgan: Y)" (the models with
# their own; in Spanish "(por defecto: X)") moves to the default column when X is one word; a
# default told in words ("$GANFORGE_DATA or ~/.cache/...") stays in the help
DEFAULT_IN_HELP = re.compile(
    r"\s*\((?:default|por defecto): (?P<default>[^\s;()]+)(?:; (?P<models>[^()]*))?\)\s*$"
)
HEADERS = {
    "en": {
        "command": "command",
        "what": "what it does",
        "option": "option",
        "default": "default",
        "help": "help",
    },
    "es": {
        "command": "orden",
        "what": "qué hace",
        "option": "opción",
        "default": "por defecto",
        "help": "ayuda",
    },
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    language = getattr(page.file, "locale", None)
    return markdown.replace(MARKER, cli_reference(language if language in HEADERS else "en"))


@functools.cache
def cli_reference(language: str = "en") -> str:
    """The Markdown of every command's section in `language` (built once per language)."""
    # imports ganforge (and so torch): only when needed
    from ganforge.cli import build_parser
    from ganforge.cli_words import install_argparse_words, translate_parser
    from ganforge.i18n import current_language, set_language

    before = current_language()
    set_language(language)
    install_argparse_words()  # "uso:" in the usage blocks
    try:
        parser = translate_parser(build_parser())
        words = HEADERS[language]
        return "\n".join(section(p, summary, words) for p, summary in commands(parser))
    finally:
        set_language(before)


def commands(
    parser: argparse.ArgumentParser, summary: str | None = None
) -> Iterator[tuple[argparse.ArgumentParser, str | None]]:
    """The parser, then its sub-commands' parsers (depth first), each with its one-line help."""
    yield parser, summary
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, command in unique_choices(action):
                yield from commands(command, helps.get(name))


def unique_choices(action: argparse._SubParsersAction) -> list[tuple[str, argparse.ArgumentParser]]:
    """A sub-command's (name, parser) pairs, aliases left out (they share the parser)."""
    seen: set[int] = set()
    pairs = []
    for name, command in action.choices.items():
        if id(command) not in seen:
            seen.add(id(command))
            pairs.append((name, command))
    return pairs


def anchor(prog: str) -> str:
    return prog.replace(" ", "-")


def section(parser: argparse.ArgumentParser, summary: str | None, words: dict) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    usage = formatter.format_help().strip()
    level = "#" * min(2 + parser.prog.count(" "), 4)
    lines = [f"{level} `{parser.prog}` {{#{anchor(parser.prog)}}}", ""]
    description = parser.description or summary
    if description:
        lines += [paragraph(description), ""]
    lines += ["```text", usage, "```", ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS]
        subcommands = [a for a in actions if isinstance(a, argparse._SubParsersAction)]
        options = [
            a
            for a in actions
            if not isinstance(a, (argparse._SubParsersAction, argparse._HelpAction))
        ]
        for action in subcommands:
            lines += [subcommand_table(parser.prog, action, words), ""]
        if options:
            lines.append(f"<p><strong>{html.escape(group.title or 'options')}</strong></p>")
            if group.description:
                lines.append(paragraph(group.description))
            lines += ["", options_table(parser.prog, options, words), ""]
    return "\n".join(lines)


def paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def subcommand_table(prog: str, action: argparse._SubParsersAction, words: dict) -> str:
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    rows = [
        f'<tr><td><a href="#{anchor(f"{prog} {name}")}"><code>{html.escape(name)}</code></a></td>'
        f"<td>{html.escape(helps.get(name, ''))}</td></tr>"
        for name, _ in unique_choices(action)
    ]
    return table((words["command"], words["what"]), rows)


def options_table(prog: str, actions: list[argparse.Action], words: dict) -> str:
    formatter = argparse.HelpFormatter(prog, width=USAGE_WIDTH)
    rows = []
    for action in actions:
        invocation = formatter._format_action_invocation(action)
        help_text, default, models = split_default(
            formatter._expand_help(action) if action.help else ""
        )
        if default is None:
            default = shown_default(action)
        default_cell = f"<code>{html.escape(default)}</code>" if default else ""
        if models:  # the models whose own default differs
            default_cell += f"<br><small>{html.escape(models)}</small>"
        rows.append(
            f"<tr><td><code>{html.escape(invocation)}</code></td><td>{default_cell}</td>"
            f"<td>{html.escape(help_text)}</td></tr>"
        )
    return table((words["option"], words["default"], words["help"]), rows)


def split_default(help_text: str) -> tuple[str, str | None, str | None]:
    """A help text without its trailing "(default: X[; models: Y])", X (None: it has none)
    and the models' own defaults."""
    match = DEFAULT_IN_HELP.search(help_text)
    if match is None:
        return help_text, None, None
    return help_text[: match.start()], match["default"], match["models"]


def shown_default(action: argparse.Action) -> str:
    """The default worth showing: none for switches, for required arguments or for None."""
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    if not action.option_strings and action.nargs not in ("?", "*"):
        return ""
    return str(action.default)


def table(headers: tuple[str, ...], rows: list[str]) -> str:
    head = "".join(f"<th>{header}</th>" for header in headers)
    return "\n".join(
        ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *rows, "</tbody>", "</table>"]
    )

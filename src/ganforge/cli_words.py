"""The command line in the reader's language (`--lang es`): every help text, description and
group title of the parser goes through the catalogue, its English text being the message id
(tools/i18n.py gathers them from the built parser, so a new or changed help text lacks its
Spanish entry until someone writes it, and the i18n check says so), and so do argparse's own
words: "usage:", the group titles it makes, its error messages."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from ganforge.i18n import N_, _, current_language

# argparse's own words that a reader meets (Python 3.11-3.13 spell them so): marked here for the
# catalogue, translated when argparse asks for them (install_argparse_words)
ARGPARSE_WORDS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("%(prog)s: error: %(message)s\n"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("not allowed with argument %s"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
)


def _texts(parser: argparse.ArgumentParser) -> Iterator[tuple[object, str]]:
    """(holder, attribute) of each text of `parser` and its subcommands' parsers."""
    yield parser, "usage"  # a short usage written by hand: "... [...] (--help: all)"
    yield parser, "description"
    yield parser, "epilog"
    for group in parser._action_groups:
        yield group, "title"
        yield group, "description"
    for action in parser._actions:
        yield action, "help"
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # the subcommands' one-line summaries
                yield choice, "help"
            for sub in dict.fromkeys(action.choices.values()):  # an alias: the same parser
                yield from _texts(sub)


def parser_texts(parser: argparse.ArgumentParser) -> list[str]:
    """Every text of `parser` a reader sees in its help, in order, once each."""
    found = (getattr(holder, name) for holder, name in _texts(parser))
    return list(dict.fromkeys(t for t in found if t and t != argparse.SUPPRESS))


def translate_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`parser` with its texts in the current language (untouched in English)."""
    if current_language() == "en":
        return parser
    for holder, name in _texts(parser):
        text = getattr(holder, name)
        if text and text != argparse.SUPPRESS:
            setattr(holder, name, str(_(text)))
    return parser


def install_argparse_words() -> None:
    """argparse's words ("usage:", its errors) in the current language. argparse looks its
    `_` up when it speaks, so this sets argparse's own; English leaves it alone."""
    if current_language() != "en":
        argparse._ = lambda text: str(_(text))

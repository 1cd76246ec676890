"""The command line in Spanish (`--lang es`): the help of every command, its usage and group
titles, and argparse's own errors come from the catalogue; English stays as the parser wrote
it. The catalogue's entries are read with gettext directly, not through ganforge."""

from __future__ import annotations

import argparse
import gettext
import re
from pathlib import Path

import pytest

import ganforge
from ganforge.cli import build_parser, main
from ganforge.cli_words import parser_texts

LOCALE = Path(ganforge.__file__).parent / "locale"
SPANISH = gettext.translation("ganforge", LOCALE, languages=["es"])


def flat(text: str) -> str:
    """The words of `text`, as argparse wraps them: one space between each."""
    return " ".join(text.split())


def subparser(name: str) -> argparse.ArgumentParser:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("command", ["train", "sample", "eval", "doctor"])
def test_a_commands_help_is_spanish_in_spanish(command, capsys):
    ganforge.set_language("en")
    english = subparser(command)
    helps = [a.help for a in english._actions if a.help and a.help != argparse.SUPPRESS]
    with pytest.raises(SystemExit) as done:
        main([command, "--help", "--lang", "es"])
    assert done.value.code == 0
    shown = flat(capsys.readouterr().out)
    assert shown.startswith(f"uso: ganforge {command}")
    assert "opciones:" in shown and "options:" not in shown
    for text in helps:
        spanish = SPANISH.gettext(text)
        assert spanish != text or not re.search(r"[a-z]{4} [a-z]{3}", text), text
        words = flat(spanish.split("%(")[0])[:40]  # up to argparse's own substitutions
        assert words in shown, (text, spanish)


def test_english_help_is_the_parsers_own_text(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help", "--lang", "en"])
    shown = flat(capsys.readouterr().out)
    assert shown.startswith("usage: ganforge train") and "options:" in shown
    steps = next(a for a in subparser("train")._actions if "--steps" in a.option_strings)
    assert flat(steps.help.split("%(")[0])[:40] in shown


def test_argparse_errors_are_spanish_in_spanish(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--steps", "many", "--lang", "es"])
    assert done.value.code == 2
    error = capsys.readouterr().err
    assert "ganforge train: error: argumento --steps: valor int no válido: 'many'" in error
    with pytest.raises(SystemExit):
        main(["sample", "--lang", "es"])
    assert "faltan estos argumentos obligatorios: RUN" in capsys.readouterr().err


def test_every_help_text_has_its_spanish_entry():
    """A new or changed help text lacks its entry until someone writes it (and tools/i18n.py
    check says which)."""
    ganforge.set_language("en")
    texts = parser_texts(build_parser())
    assert len(texts) > 200  # every command's options, not a few
    lacking = [text for text in texts if SPANISH.gettext(text) == text and " " in text.strip()]
    assert lacking == []

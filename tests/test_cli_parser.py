"""`ganforge --help` and argument errors without torch: the parser's shape, kept in the user
cache after a first command, rebuilds a parser that prints the same help (in English and in
Spanish), parses the same arguments and refuses the same way as the real one; the command
answers from it without importing torch; a changed or damaged shape is not used."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from ganforge import cli_parser
from ganforge.cli import _english_parser, build_parser
from ganforge.cli import main as full_main
from ganforge.cli_words import translate_parser
from ganforge.i18n import set_language
from ganforge.launch import main as launch


def parsers(parser: argparse.ArgumentParser):
    """`parser` and every sub-command's, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                yield from parsers(command)


@pytest.fixture(scope="module")
def rebuilt():
    shape = cli_parser.shape(_english_parser())
    return json.loads(json.dumps(shape))  # as it comes back from the cache file


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_rebuilt_parser_prints_the_same_help_for_every_command(rebuilt, language):
    set_language(language)
    real = list(parsers(translate_parser(build_parser())))
    copy = list(parsers(translate_parser(cli_parser.rebuild(rebuilt))))
    assert len(real) == len(copy) > 20
    for mine, theirs in zip(copy, real):
        assert mine.prog == theirs.prog
        assert mine.format_help() == theirs.format_help(), mine.prog


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--model", "cgan", "--steps", "30", "--lr-d", "0.001", "--spectral-norm"],
        ["sample", "runs/x", "--classes", "all", "--n", "4", "--truncation", "0.7"],
        ["latent", "interp", "runs/x", "--from", "1", "--to", "2", "--mode", "lerp"],
        ["eval", "runs/a", "--metrics", "fid,kid", "--lang", "es"],
        ["--debug", "doctor", "runs/x"],
    ],
)
def test_the_rebuilt_parser_parses_as_the_real_one(rebuilt, argv):
    real = vars(build_parser().parse_args(argv))
    assert vars(cli_parser.rebuild(rebuilt).parse_args(argv)) == real


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--stpes", "3"],
        ["sample"],
        ["latent", "interp", "runs/x", "--from", "1", "--to", "2", "--steps", "z"],
        ["trian"],
        ["train", "--steps", "x", "--lang", "es"],
        ["train", "--help"],
        ["--lang", "es", "latent", "--help"],
    ],
)
def test_help_and_errors_from_the_cache_are_those_of_the_real_parser(argv, capsys):
    with pytest.raises(SystemExit) as real:
        full_main(argv)  # also keeps the parser's shape in the test's cache
    said = capsys.readouterr()
    assert cli_parser.cache_file().is_file()
    with pytest.raises(SystemExit) as cached:
        launch(argv)
    assert cached.value.code == real.value.code
    assert capsys.readouterr() == said


def test_the_command_answers_help_and_errors_without_torch(tmp_path):
    """After one command has run, `ganforge ... --help` and a wrong flag import no torch."""
    environment = {**os.environ, "GANFORGE_CACHE": str(tmp_path)}
    first = [sys.executable, "-m", "ganforge", "train", "--help"]
    assert subprocess.run(first, env=environment, capture_output=True).returncode == 0
    probe = (
        "import sys\n"
        "from ganforge.launch import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, 'torch' in sys.modules)\n"
    )
    for argv, code in ((["train", "--help"], "0"), (["sample", "--nn", "3", "r"], "2")):
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv], env=environment, capture_output=True, text=True
        )
        assert done.stdout.split()[-2:] == [code, "False"], done.stdout + done.stderr


def test_a_shape_of_other_code_or_a_damaged_one_is_not_used(monkeypatch, capsys):
    cli_parser.remember(_english_parser)
    assert cli_parser.cached_parser() is not None
    path = cli_parser.cache_file()
    monkeypatch.setattr(cli_parser, "fingerprint", lambda: "changed-code")
    assert cli_parser.cached_parser() is None  # another file: the real parser answers
    monkeypatch.undo()
    path.write_text('{"prog": "ganforge", "actions": [{"kind": ', encoding="utf-8")
    assert cli_parser.cached_parser() is None
    with pytest.raises(SystemExit):
        launch(["models", "--help"])  # the real parser, from a damaged cache
    assert "usage: ganforge models" in capsys.readouterr().out
    path.unlink()


def test_a_cache_that_cannot_be_written_is_left_alone(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("GANFORGE_CACHE", str(blocked))
    cli_parser.remember(_english_parser)  # no error
    assert cli_parser.cached_parser() is None


def test_a_new_shape_replaces_the_shapes_of_other_code(monkeypatch):
    cli_parser.remember(_english_parser)
    old = cli_parser.cache_file()
    monkeypatch.setattr(cli_parser, "fingerprint", lambda: "changed-code")
    cli_parser.remember(_english_parser)
    assert cli_parser.cache_file().is_file() and not old.exists()
    assert sorted(old.parent.glob("parser-*.json")) == [cli_parser.cache_file()]

"""The `ganforge` command: `--help` and argument errors answered from the parser's cached shape
(cli_parser), without importing torch; everything else, and every first time, by ganforge.cli."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ganforge.cli_parser import cached_parser, option_value, unknown_flags
from ganforge.cli_words import install_argparse_words, translate_parser
from ganforge.errors import GanforgeError
from ganforge.i18n import set_language


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if option_value(arguments, "--plugin") is None:  # a plugin adds models and their flags
        try:
            set_language(option_value(arguments, "--lang"))
        except GanforgeError:
            pass  # ganforge.cli says what is wrong with --lang
        else:
            parser = cached_parser()
            if parser is not None:
                install_argparse_words()
                translate_parser(parser)
                args, extras = parser.parse_known_args(arguments)  # --help, errors: exit here
                if extras:
                    unknown_flags(parser, args, extras)
    from ganforge.cli import main as run_command  # a valid command: the real parser, torch

    return run_command(arguments)

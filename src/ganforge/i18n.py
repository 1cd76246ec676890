"""The words a student reads while training, in Spanish or English: gettext catalogues under
ganforge/locale, the language from `--lang`, else GANFORGE_LANG, else the locale (LANGUAGE,
LC_ALL, LC_MESSAGES, LANG), else English.

Source strings are English and marked with `_()` (a message with numbers is a template,
`_("{records} records").format(records=n)`, so a translation may move them). The Spanish
catalogue is locale/es/LC_MESSAGES/ganforge.po, compiled to .mo by `python tools/i18n.py`;
a test fails when a marked message has no Spanish entry."""

from __future__ import annotations

import gettext
import os
import re
import string
from collections.abc import Mapping
from pathlib import Path

from ganforge.errors import GanforgeError

LANGUAGES = ("en", "es")
DOMAIN = "ganforge"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")  # gettext's order
# Languages that write 0,5 and 1.500 where English writes 0.5 and 1,500
DECIMAL_COMMA = {"es"}
AFTER_A_FLAG = re.compile(r"--[a-z0-9-]+ $")  # "--lr-d {lr:g}": a value to type, kept as is

_current: dict[str, object] = {}  # "language" and its "translation", set on first use


def language_from_environment(environ: Mapping[str, str] = os.environ) -> str:
    """GANFORGE_LANG if set, else the first locale variable that is set ("es_ES.UTF-8" -> es);
    English for any language without a catalogue (C, POSIX, fr_FR, ...)."""
    chosen = environ.get("GANFORGE_LANG")
    if chosen:
        return check_language(chosen, "GANFORGE_LANG")
    for name in LOCALE_VARIABLES:
        value = environ.get(name)
        if value:
            code = value.split(":")[0].split(".")[0].split("_")[0].lower()
            return code if code in LANGUAGES else "en"
    return "en"


def check_language(language: str, where: str = "--lang") -> str:
    if language not in LANGUAGES:
        raise GanforgeError(f"{where}: {' or '.join(LANGUAGES)}, not '{language}'")
    return language


def set_language(language: str | None = None) -> str:
    """Speak `language` from now on (None: from the environment); returns the one chosen."""
    language = check_language(language) if language else language_from_environment()
    translation = (
        gettext.NullTranslations()
        if language == "en"
        else gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    )
    _current.update(language=language, translation=translation)
    return language


def current_language() -> str:
    if not _current:
        set_language()
    return str(_current["language"])


class _Numbers(string.Formatter):
    """Formats a message's numbers as its language writes them: a field with a format spec
    ({:.0%}, {:.3g}, {:,}) gets the decimal comma in Spanish, unless it follows a flag (a value
    the reader types back, which Python reads with a point)."""

    def vformat(self, format_string, args, kwargs):
        pieces, auto = [], 0
        for literal, name, spec, conversion in self.parse(format_string):
            pieces.append(literal)
            if name is None:
                continue
            if name == "":
                name, auto = str(auto), auto + 1
            value, _key = self.get_field(name, args, kwargs)
            value = self.convert_field(value, conversion)
            spec = self.vformat(spec, args, kwargs) if "{" in spec else spec
            text = self.format_field(value, spec)
            if spec and isinstance(value, (int, float)) and not AFTER_A_FLAG.search(literal):
                text = text.translate(str.maketrans(",.", ".,"))
            pieces.append(text)
        return "".join(pieces)


class Message(str):
    """A translated message: its `.format()` writes numbers as the language does."""

    def format(self, *args, **kwargs) -> str:  # noqa: A003 (str's own name)
        if current_language() in DECIMAL_COMMA:
            return _Numbers().vformat(str(self), args, kwargs)
        return str.format(self, *args, **kwargs)


def _(message: str) -> str:
    """`message` in the current language (itself where the catalogue has no entry)."""
    if not _current:
        set_language()
    return Message(_current["translation"].gettext(message))  # type: ignore[union-attr]


def ngettext(singular: str, plural: str, count: int) -> str:
    if not _current:
        set_language()
    return _current["translation"].ngettext(singular, plural, count)  # type: ignore[union-attr]


def N_(message: str) -> str:  # noqa: N802 (gettext's name)
    """Marks a message for the catalogue where it is defined (a table built at import); `_()`
    translates it where it is shown."""
    return message

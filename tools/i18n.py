"""The translation catalogues: gather the messages marked with `_()` / `N_()` in src/ganforge
and the CLI's help texts (read from the built parser: ganforge.cli_words), merge them into
each language's .po (new ones empty, gone ones dropped, translations kept), and compile the
.po files to the .mo files ganforge reads (with Babel, a dev dependency).

    python tools/i18n.py update     # after adding or changing a marked message
    python tools/i18n.py compile    # after translating: writes the .mo files
    python tools/i18n.py check      # lists the messages a language still lacks (exit 1 if any)
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "ganforge"
LOCALE_DIR = PACKAGE / "locale"
DOMAIN = "ganforge"
TRANSLATED = ("es",)  # English is the source language
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


def source_catalog() -> Catalog:
    """Every marked message of the package, with where it is used."""
    catalog = Catalog(project="ganforge", domain=DOMAIN)
    found = extract_from_dir(
        PACKAGE, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("i18n:",)
    )
    for filename, line, message, comments, _context in found:
        catalog.add(message, locations=[(f"ganforge/{filename}", line)], auto_comments=comments)
    for text in parser_texts():
        if text not in catalog:
            catalog.add(text, locations=[("ganforge/cli.py", 0)], auto_comments=["help text"])
    return catalog


def parser_texts() -> list[str]:
    """The CLI's help texts, descriptions and group titles, read from the real parser built in
    English (cli_words.translate_parser looks them up by that English text)."""
    sys.path.insert(0, str(PACKAGE.parent))
    from ganforge.cli import build_parser
    from ganforge.cli_words import parser_texts as texts_of
    from ganforge.i18n import set_language

    set_language("en")
    return texts_of(build_parser())


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, project="ganforge", domain=DOMAIN)
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def missing(catalog: Catalog, source: Catalog) -> list[str]:
    """Source messages the catalogue does not translate (absent, empty or fuzzy)."""
    lacking = []
    for message in source:
        if not message.id:
            continue
        entry = catalog.get(message.id)
        strings = entry.string if entry is not None else None
        texts = strings if isinstance(strings, (list, tuple)) else [strings]
        if entry is None or entry.fuzzy or not all(texts):
            lacking.append(message.id if isinstance(message.id, str) else message.id[0])
    return lacking


def mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def update() -> None:
    source = source_catalog()
    for language in TRANSLATED:
        catalog = read_catalog(language)
        catalog.update(source, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path = po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, sort_output=False)
        lacking = len(missing(catalog, source))
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages, {lacking} to translate")


def compile_catalogs() -> None:
    for language in TRANSLATED:
        path = po_path(language).with_suffix(".mo")
        path.write_bytes(mo_bytes(read_catalog(language)))
        print(f"{path.relative_to(ROOT)} written")


def check() -> int:
    source, failures = source_catalog(), 0
    for language in TRANSLATED:
        lacking = missing(read_catalog(language), source)
        failures += len(lacking)
        for message in lacking:
            print(f"{language}: no translation for {message!r}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("update", "compile", "check"))
    action = parser.parse_args().action
    if action == "update":
        update()
    elif action == "compile":
        compile_catalogs()
    else:
        return check()
    return 0


if __name__ == "__main__":
    sys.exit(main())

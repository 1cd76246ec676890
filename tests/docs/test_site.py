"""The course site (mkdocs.yml, docs/) builds with `mkdocs build --strict` and says what the code
says: both languages with a language switch on their pages, a CLI reference holding every
command and flag of the real parser with its real help, formulas as MathML, nothing loaded from
outside, and a broken internal link failing the build."""

from __future__ import annotations

import argparse
import gettext
import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ganforge
from ganforge.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"es": "", "en": "en/"}  # each language's folder in the site (Spanish: the default)
DEFAULT_IN_HELP = re.compile(
    r"(?s)(?P<help>.*?)\s*\((?:default|por defecto): (?P<default>[^\s;()]+)"
    r"(?:; (?P<models>[^()]*))?\)\s*"
)
USAGE = {"es": "uso: ", "en": "usage: "}  # argparse's word, in the page's language
# the CLI's texts as the Spanish page shows them: read from the catalogue with gettext
SPANISH = gettext.translation(
    "ganforge", Path(ganforge.__file__).parent / "locale", languages=["es"]
)


# the figures' runs (docs/hooks/figures.py), cached where `mkdocs build` keeps them: a copy of
# the site elsewhere reuses them instead of training them again
FIGURES_CACHE = os.environ.get("GANFORGE_DOCS_FIGURES_CACHE") or str(ROOT / ".cache/docs-figures")


def build_site(config_dir: Path, site_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=config_dir,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "NO_MKDOCS_2_WARNING": "1",  # Material's banner about its successor
            "GANFORGE_DOCS_FIGURES_CACHE": FIGURES_CACHE,
            "OMP_NUM_THREADS": "1",
        },
        timeout=600,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = build_site(ROOT, site_dir)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    return site_dir


def page(site: Path, language: str, name: str = "") -> str:
    path = site / LANGUAGES[language] / name / "index.html"
    assert path.is_file(), f"missing page {path.relative_to(site)}"
    return path.read_text(encoding="utf-8")


def commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every sub-command's parser, at any depth."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                yield from commands(command)


def command_section(page_html: str, prog: str) -> str:
    """The CLI reference's section of one command: from its heading to the next heading."""
    start = page_html.find(f'id="{prog.replace(" ", "-")}"')
    assert start >= 0, f"no section for {prog}"
    end = re.compile(r"<h[1-6][ >]").search(page_html, start)
    return page_html[start : end.start() if end else len(page_html)]


def option_row(page_html: str, flag: str) -> str:
    """The table row of the CLI reference whose option cell starts with `flag`."""
    match = re.search(rf"<tr><td><code>{re.escape(flag)}(?=[ ,<]).*?</tr>", page_html)
    assert match is not None, f"no row for {flag}"
    return match[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_exists_in_both_languages(site, language):
    pages = ("", "installation", "course/what-is-a-gan", "course/vanilla-gan", "run-folder")
    pages += ("course/dcgan", "course/problems", "course/remedies", "course/measuring")
    for name in (*pages, "glossary"):
        assert f'<html lang="{language}"' in page(site, language, name)
    for name in ("reference/cli", "reference/api"):
        page(site, language, name)


@pytest.mark.parametrize(
    "name", ["", "course/what-is-a-gan", "course/vanilla-gan", "course/dcgan", "reference/cli"]
)
def test_language_switch_links_each_page_to_its_translation(site, name):
    """The switch of each language's page leads to the other language's same page, relatively
    (the site also works opened from its files)."""
    for language, other in (("es", "en"), ("en", "es")):
        here = site / LANGUAGES[language] / name
        links = re.findall(rf'<a href="([^"]+)" hreflang="{other}"', page(site, language, name))
        assert links, f"no link to {other} on the {language} page {name!r}"
        target = (here / links[0] / "index.html").resolve()
        assert target == (site / LANGUAGES[other] / name / "index.html").resolve()
        assert target.is_file()


@pytest.mark.parametrize("language", LANGUAGES)
def test_cli_reference_holds_every_command_and_flag_of_the_real_parser(site, language):
    reference = page(site, language, "reference/cli")
    parsers = list(commands(build_parser()))
    assert len(parsers) > 10
    for parser in parsers:
        section = command_section(reference, parser.prog)
        assert f"{USAGE[language]}{parser.prog}" in section
        for action in parser._actions:  # every shown option but -h, which every command has
            shown = action.option_strings and action.help != argparse.SUPPRESS
            if shown and not isinstance(action, argparse._HelpAction):
                flag = action.option_strings[0]
                assert re.search(rf"<code>{re.escape(flag)}[ ,<]", section), (parser.prog, flag)


@pytest.mark.parametrize("language", LANGUAGES)
def test_cli_reference_shows_the_real_help_and_default_of_label_smoothing(site, language):
    train = next(p for p in commands(build_parser()) if p.prog == "ganforge train")
    action = next(a for a in train._actions if "--label-smoothing" in a.option_strings)
    section = command_section(page(site, language, "reference/cli"), "ganforge train")
    row = option_row(section, "--label-smoothing")
    help_text = action.help if language == "en" else SPANISH.gettext(action.help)
    assert help_text != action.help or language == "en"
    match = DEFAULT_IN_HELP.fullmatch(help_text)
    assert match is not None, "--label-smoothing's help names its default"
    assert f"<td>{html.escape(match['help'])}</td>" in row
    assert f"<code>{html.escape(match['default'])}</code>" in row
    assert match["models"] and html.escape(match["models"]) in row  # cyclegan, r3gan: 0.0


@pytest.mark.parametrize("language", LANGUAGES)
def test_formulas_are_mathml_and_nothing_is_loaded_from_outside(site, language):
    chapter = page(site, language, "course/what-is-a-gan")
    assert chapter.count("<math") >= 5  # V(D, G), D*(x), C(G), ... as MathML
    assert 'class="arithmatex"' not in chapter  # every formula was converted
    for path in site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|img|iframe)[^>]*\ssrc="(?:https?:)?//[^"]*"', text)
        remote += re.findall(r'<link[^>]*\shref="(?:https?:)?//[^"]*"', text)
        assert not remote, f"{path.relative_to(site)} loads {remote}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_api_reference_shows_the_docstrings(site, language):
    api = page(site, language, "reference/api")
    for name in ganforge.__all__:  # a new export without its section fails here
        assert f'id="ganforge.{name}"' in api, f"docs/reference/api.*.md lacks ::: ganforge.{name}"
    first_line = ganforge.train.__doc__.strip().splitlines()[0]
    assert html.escape(first_line) in api


def test_a_broken_internal_link_fails_the_build(tmp_path):
    """--strict is the link check: a link to a page that does not exist stops the build."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "src").symlink_to(ROOT / "src")
    chapter = tmp_path / "docs" / "course" / "what-is-a-gan.en.md"
    chapter.write_text(chapter.read_text() + "\nSee [chapter 2](no-such-chapter.md).\n")
    result = build_site(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-chapter.md" in result.stderr


@pytest.mark.parametrize("language", LANGUAGES)
def test_chapter_2_shows_every_figure_with_its_command(site, language):
    """Each figure of the vanilla GAN's page: its pictures are in the site, its command under
    it, the two loss figures in tabs; no figure marker is left unreplaced."""
    chapter = page(site, language, "course/vanilla-gan")
    here = site / LANGUAGES[language] / "course/vanilla-gan"
    figures = re.findall(r'<figure class="ganforge-figure" id="figure-([\w-]+)"', chapter)
    assert set(figures) >= {"vanilla-gan", "g-loss-saturating", "g-loss-non-saturating"}
    assert "ganforge-figure:" not in chapter
    pictures = re.findall(r'<img [^>]*src="([^"]*figures/[^"]+)"', chapter)
    assert len(pictures) >= len(figures)
    for src in pictures:
        assert (here / src).resolve().is_file(), src
    assert f"curves-{language}.png" in " ".join(pictures)  # curves titled in the language
    text = re.sub(r"<[^>]+>", "", chapter)
    for name in figures:
        assert f"--out runs/{name}" in text
    assert text.count("ganforge train --model mlp --data mnist-mini") >= len(figures)
    assert "--g-loss saturating" in text
    assert 'class="tabbed-set' in chapter


@pytest.mark.parametrize("language", LANGUAGES)
def test_chapter_3_shows_dcgan_beside_the_vanilla_gan_and_the_papers_settings(site, language):
    """The DCGAN page: its figures with their pictures and commands, the same-budget vanilla
    GAN and the paper's settings each in a tab beside ganforge's DCGAN, formulas as MathML."""
    chapter = page(site, language, "course/dcgan")
    here = site / LANGUAGES[language] / "course/dcgan"
    figures = re.findall(r'<figure class="ganforge-figure" id="figure-([\w-]+)"', chapter)
    assert set(figures) == {
        "dcgan",
        "dcgan-vs-mlp-dcgan",
        "dcgan-vs-mlp-mlp",
        "dcgan-defaults",
        "dcgan-paper-settings",
    }
    assert "ganforge-figure:" not in chapter
    for src in re.findall(r'<img [^>]*src="([^"]*figures/[^"]+)"', chapter):
        assert (here / src).resolve().is_file(), src
    text = re.sub(r"<[^>]+>", "", chapter)
    assert text.count("ganforge train --model dcgan --data fashion-mnist") >= 4
    assert "ganforge train --model mlp --data fashion-mnist" in text
    assert "--beta1 0.5" in text and "--ema-decay 0" in text  # the paper's settings
    assert chapter.count('class="tabbed-set') == 2
    assert chapter.count("<math") >= 8 and 'class="arithmatex"' not in chapter


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_chapter_links_its_notebook_and_the_site_holds_it(site, language):
    home = page(site, language)
    chapters = ("course/what-is-a-gan", "course/vanilla-gan", "course/dcgan", "course/problems")
    chapters += ("course/remedies", "course/measuring")
    for name in chapters:
        chapter = page(site, language, name)
        links = re.findall(r'href="([^"]+\.ipynb)"', chapter)
        assert links, f"{name} links no notebook"
        notebook = (site / LANGUAGES[language] / name / links[0]).resolve()
        assert notebook.is_file()
        assert f'"language": "{language}"' in notebook.read_text(encoding="utf-8")
        assert Path(links[0]).name in home  # the course map links it too


@pytest.mark.parametrize("language", LANGUAGES)
def test_chapter_4_shows_each_problem_with_the_doctors_events(site, language):
    """The problems' page: every figure with its pictures, its command and the doctor's events
    (each problem raised on purpose), the ring's frames in tabs beside its remedies."""
    chapter = page(site, language, "course/problems")
    here = site / LANGUAGES[language] / "course/problems"
    figures = re.findall(r'<figure class="ganforge-figure" id="figure-([\w-]+)"', chapter)
    assert {"problems-oscillation", "problems-exploding", "problems-collapse"} <= set(figures)
    assert "problems-collapse-pack" in figures and "ganforge-figure:" not in chapter
    for src in re.findall(r'<img [^>]*src="([^"]*figures/[^"]+)"', chapter):
        assert (here / src).resolve().is_file(), src
    assert "figures/problems-collapse/frames.png" in chapter
    text = re.sub(r"<[^>]+>", "", chapter)
    for event in ("oscillation", "d_overpowering", "rollback", "exploding", "mode_collapse"):
        assert re.search(rf"{event}: (paso|step) \d+", text), event
    assert "--pack 2" in text and "--out runs/problems-collapse-pack" in text
    assert 'class="tabbed-set' in chapter and chapter.count("<math") >= 2


@pytest.mark.parametrize("language", LANGUAGES)
def test_chapter_5_shows_each_remedy_beside_its_problem(site, language):
    """The remedies' page: chapter 4's provoked runs again, each in a tab beside the same run
    with one remedy flag, with its pictures, its command and the doctor's events; the remedies'
    formulas as MathML and `ganforge doctor RUN --try` explained with its command."""
    chapter = page(site, language, "course/remedies")
    here = site / LANGUAGES[language] / "course/remedies"
    figures = re.findall(r'<figure class="ganforge-figure" id="figure-([\w-]+)"', chapter)
    remedies = {
        "remedies-vanishing-non-saturating": "problems-vanishing",
        "remedies-exploding-spectral-norm": "problems-exploding",
        "remedies-oscillation-r1": "problems-oscillation",
    }
    for remedy, problem in remedies.items():
        assert remedy in figures and problem in figures
        assert figures.index(problem) < figures.index(remedy)  # the problem's tab comes first
    assert "ganforge-figure:" not in chapter
    for src in re.findall(r'<img [^>]*src="([^"]*figures/[^"]+)"', chapter):
        assert (here / src).resolve().is_file(), src
    text = re.sub(r"<[^>]+>", "", chapter)
    for flag in ("--g-loss non-saturating", "--spectral-norm", "--r1 10"):
        assert flag in text
    for name in remedies:
        assert f"--out runs/{name}" in text
    assert re.search(r"rollback: (paso|step) \d+", text)  # the problem's events are shown
    assert chapter.count('class="tabbed-set') == 3
    assert chapter.count("<math") >= 8 and 'class="arithmatex"' not in chapter
    assert "ganforge doctor runs/problems-vanishing --try" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_chapter_6_shows_the_losses_beside_the_fid(site, language):
    """The measuring page: a run evaluated while it trains, its losses and its FID in one
    table (an evaluation is a record of its own at its step), the FID's curve panel, the
    FID's formula as MathML, and the commands that measure and compare runs."""
    chapter = page(site, language, "course/measuring")
    here = site / LANGUAGES[language] / "course/measuring"
    assert 'id="figure-measuring-fid"' in chapter and "ganforge-figure:" not in chapter
    for src in re.findall(r'<img [^>]*src="([^"]*figures/[^"]+)"', chapter):
        assert (here / src).resolve().is_file(), src
    text = re.sub(r"<[^>]+>", "", chapter)
    assert "--eval-every 150 --eval-metric fid --eval-n 500" in text
    rows = re.findall(r"<tr>\s*<td[^>]*>(150|300|450|600)</td>(.*?)</tr>", chapter, re.S)
    assert [step for step, _ in rows] == ["150", "300", "450", "600"]
    assert all("—" not in cells for _, cells in rows)  # losses and FID side by side
    assert "eval-every)" in text  # the evaluation's curve panel is named under the figure
    assert chapter.count("<math") >= 2 and 'class="arithmatex"' not in chapter
    for command in ("ganforge eval runs/measuring-fid", "ganforge compare"):
        assert command in text
    assert "--early-stop-patience" in text
    assert "checkpoints/best.safetensors" in text

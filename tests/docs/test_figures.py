"""The course's figures (docs/hooks/figures.py, table docs/figures.py): made by ganforge while the
site builds, cached by the hash of their run's config, shown with the command that made them.

The cache key is the canonical config (defaults filled in, keys sorted); a second build trains
nothing; a changed config trains again; the built page holds the pictures and the command in
each language; the command shown trains the same config; `--strict` fails on an unknown id."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
from pathlib import Path

import pytest
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import Abort

import ganforge
from ganforge.cli import parse_train_flags

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "docs" / "hooks" / "figures.py"
TINY = {"model": "mlp", "data": "digits", "width": 8, "z_dim": 8, "batch_size": 16, "steps": 6}
TINY_FIGURE = (
    "Figure(config={config!r}, samples=16, curves=('Losses',), numbers=('d_fake',), "
    "events=True, caption={{'es': 'Una figura diminuta.', 'en': 'A tiny figure.'}})"
)


@pytest.fixture(scope="module")
def hook():
    spec = importlib.util.spec_from_file_location("figures_hook_under_test", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_site(folder: Path, figures: dict[str, dict], pages: dict[str, str]) -> Path:
    """A two-language site of `pages` ({"index.es.md": text}) whose figure table holds
    `figures` ({id: config}), built with the real hook."""
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    entries = ", ".join(f"{name!r}: {TINY_FIGURE.format(config=c)}" for name, c in figures.items())
    (docs / "figures.py").write_text(
        "import runpy\n"
        f"Figure = runpy.run_path({str(ROOT / 'docs' / 'figures.py')!r})['Figure']\n"
        f"FIGURES = {{{entries}}}\n"
    )
    for name, text in pages.items():
        (docs / name).write_text(text, encoding="utf-8")
    (folder / "mkdocs.yml").write_text(
        f"""site_name: figures
docs_dir: docs
exclude_docs: |
  /figures.py
theme:
  name: material
  language: es
hooks:
  - {HOOK}
markdown_extensions: [admonition, attr_list, md_in_html, pymdownx.highlight, pymdownx.superfences]
plugins:
  - i18n:
      docs_structure: suffix
      languages:
        - {{locale: es, name: Español, default: true, build: true}}
        - {{locale: en, name: English, build: true}}
""",
        encoding="utf-8",
    )
    return folder


def build_site(folder: Path, strict: bool = True) -> Path:
    site = folder / "site"
    shutil.rmtree(site, ignore_errors=True)
    build(load_config(str(folder / "mkdocs.yml"), strict=strict, site_dir=str(site)))
    return site


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


@pytest.fixture
def figure_site(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DOCS_FIGURES_CACHE", str(tmp_path / "cache"))
    page = "# Figura\n\n<!-- ganforge-figure: tiny -->\n"
    return write_site(
        tmp_path / "project",
        {"tiny": TINY},
        {"index.es.md": page, "index.en.md": page.replace("Figura", "Figure")},
    )


@pytest.fixture
def count_training(monkeypatch):
    """ganforge.train, counting its calls (calls["n"]); with calls["refuse"] set, failing."""
    calls = {"n": 0, "refuse": False}
    real_train = ganforge.train

    def counted(*args, **kwargs):
        if calls["refuse"]:
            raise AssertionError("a build trained a run the cache holds")
        calls["n"] += 1
        return real_train(*args, **kwargs)

    monkeypatch.setattr(ganforge, "train", counted)
    return calls


def test_cache_key_changes_with_the_config_and_not_with_its_order(hook):
    reordered = dict(reversed(list(TINY.items())))
    assert hook.cache_key(reordered) == hook.cache_key(TINY)
    assert hook.cache_key({**TINY, "steps": 7}) != hook.cache_key(TINY)
    assert hook.cache_key({**TINY, "g_loss": "saturating"}) != hook.cache_key(TINY)
    # a default spelt out is the same run; the folder a run would go to is not part of it
    assert hook.cache_key({**TINY, "lr_d": 2e-4}) == hook.cache_key(TINY)
    assert hook.cache_key({**TINY, "out": "runs/elsewhere"}) == hook.cache_key(TINY)
    assert re.fullmatch(r"[0-9a-f]{64}", hook.cache_key(TINY))


def test_the_command_shown_trains_the_same_config(hook):
    """Each figure's `ganforge train ...` line, parsed by the real CLI, is its config."""
    table = hook.load_table(ROOT / "docs")
    assert table, "docs/figures.py defines no figure"
    for name, figure in table.items():
        command = hook.train_command(figure.config, f"runs/{name}")
        words = shlex.split(command.replace("\\\n", " "))
        assert words[:2] == ["ganforge", "train"]
        assert all(len(line) <= hook.COMMAND_WIDTH for line in command.splitlines())
        options = parse_train_flags(words[2:])
        assert options.pop("out") == f"runs/{name}"
        assert hook.cache_key(options) == hook.cache_key(figure.config), name


def test_the_command_spells_a_field_by_its_own_flag_not_an_alias(hook):
    """--ema is the same as --ema-decay: the command shows the flag the help documents."""
    command = hook.train_command({"model": "dcgan", "ema_decay": 0}, "runs/x")
    assert "--ema-decay 0" in command and "--ema " not in command


def test_the_built_page_holds_the_pictures_and_the_command_in_each_language(
    figure_site, count_training
):
    site = build_site(figure_site)
    assert count_training["n"] == 1  # one run, shared by both languages
    for language, prefix, words in (
        ("es", "", "La orden que hizo esta figura"),
        ("en", "en/", "The command that made this figure"),
    ):
        page = (site / prefix / "index.html").read_text(encoding="utf-8")
        images = re.findall(r'<img [^>]*src="([^"]+)"', page)
        assert any(src.endswith("figures/tiny/samples.png") for src in images), images
        assert any(src.endswith(f"figures/tiny/curves-{language}.png") for src in images)
        for src in images:
            assert (site / prefix / src).resolve().is_file(), src
        text = text_of(page)
        assert words in text
        assert "ganforge train --model mlp --data digits --width 8 --z-dim 8" in text
        assert "--steps 6 --out runs/tiny" in text
        assert "ganforge sample runs/tiny --n 16 --seed 0" in text
        assert re.search(r"<th[^>]*><code>d_fake</code></th>", page)  # the numbers' table
        assert "events.jsonl" in text  # the doctor's events, or that it saw none
    assert (site / "figures/tiny/samples.png").read_bytes().startswith(b"\x89PNG")


def test_a_second_build_trains_nothing_and_a_changed_config_trains_again(
    figure_site, count_training
):
    first = build_site(figure_site)
    samples = (first / "figures/tiny/samples.png").read_bytes()
    assert count_training["n"] == 1

    count_training["refuse"] = True
    second = build_site(figure_site)
    assert (second / "figures/tiny/samples.png").read_bytes() == samples

    count_training["refuse"] = False
    write_site(figure_site, {"tiny": {**TINY, "steps": 7}}, {})
    third = build_site(figure_site)
    assert count_training["n"] == 2
    assert "--steps 7" in text_of((third / "index.html").read_text(encoding="utf-8"))
    cached = sorted(p.name for p in (figure_site.parent / "cache").iterdir())
    assert len(cached) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", name) for name in cached)


def test_strict_build_fails_on_an_unknown_figure_id(figure_site, caplog):
    page = figure_site / "docs" / "index.en.md"
    page.write_text("# Figure\n\n<!-- ganforge-figure: no-such-figure -->\n", encoding="utf-8")
    with pytest.raises(Abort):
        build_site(figure_site)
    assert "unknown figure 'no-such-figure'" in caplog.text
    assert "tiny" in caplog.text  # the message lists the ids the table defines
    site = build_site(figure_site, strict=False)  # without --strict: an error box on the page
    assert "Unknown figure: no-such-figure" in (site / "en/index.html").read_text(encoding="utf-8")


def test_a_run_of_points_shows_its_frames_and_its_points(tmp_path, monkeypatch):
    """Chapter 4's figures of ring8: `frames` lays the run's progress pictures (GAN Lab's
    frames) side by side and names their files under the command; `samples` of a run of
    points is the scatter `ganforge sample RUN --out points.png` draws."""
    monkeypatch.setenv("GANFORGE_DOCS_FIGURES_CACHE", str(tmp_path / "cache"))
    config = {
        "model": "mlp",
        "data": "ring8",
        "z_dim": 2,
        "width": 8,
        "batch_size": 16,
        "steps": 6,
        "sample_every": 3,
        "log_every": 3,
    }
    page = "# Puntos\n\n<!-- ganforge-figure: ring -->\n"
    folder = write_site(tmp_path / "project", {}, {"index.es.md": page, "index.en.md": page})
    (folder / "docs" / "figures.py").write_text(
        "import runpy\n"
        f"Figure = runpy.run_path({str(ROOT / 'docs' / 'figures.py')!r})['Figure']\n"
        f"FIGURES = {{'ring': Figure(config={config!r}, samples=100, frames=(3, 6), "
        "caption={'es': 'Un anillo.', 'en': 'A ring.'})}\n"
    )
    site = build_site(folder)
    frames = site / "figures/ring/frames.png"
    from PIL import Image

    with Image.open(frames) as row, Image.open(site / "figures/ring/samples.png") as points:
        assert row.width > 2 * row.height  # two square frames in a row
        assert points.width == points.height  # one frame-like scatter, not a grid
    text = text_of((site / "index.html").read_text(encoding="utf-8"))
    assert "ganforge sample runs/ring --n 100 --seed 0 --out points.png" in text
    assert "runs/ring/samples/step_0000003.png, step_0000006.png" in text


def test_a_missing_frame_names_the_step_and_sample_every(hook, tmp_path):
    from mkdocs.exceptions import PluginError

    figure_type = hook.load_table(ROOT / "docs")["vanilla-gan"].__class__
    run = ganforge.train({**TINY, "sample_every": 3}, out=str(tmp_path / "run"))
    with pytest.raises(PluginError, match="no progress picture at step 4 .*--sample-every 3"):
        hook.frames_picture(run, figure_type(config=TINY, caption={}, frames=(3, 4)))


def test_numbers_of_a_blown_up_run_stay_short(hook):
    words = hook.WORDS["en"]
    assert hook.number(0.00661, words) == "0.00661"
    assert hook.number(2095300.0, words) == "2095300"
    assert hook.number(2.4044711e19, words) == "2.4e+19"
    assert hook.number(2.4044711e19, hook.WORDS["es"]) == "2,4e+19"


def test_an_evaluated_run_shows_its_losses_beside_its_evaluations(hook, tmp_path):
    """An evaluation (--eval-every) is a record of its own at its step: the table shows it
    beside the losses of that step, and its curve panel is drawn in either language."""
    figure_type = hook.load_table(ROOT / "docs")["vanilla-gan"].__class__
    config = {**TINY, "log_every": 3, "eval_every": 3, "eval_metric": "fid", "eval_n": 64}
    run = ganforge.train(config, out=str(tmp_path / "run"))
    figure = figure_type(
        config=config,
        caption={},
        curves=("Losses", "Evaluation: fid (--eval-every)"),
        numbers=("loss_d", "eval_fid"),
        at_steps=(3, 6),
    )
    table = hook.numbers_table(run, figure, hook.WORDS["en"])
    rows = table.splitlines()[2:]
    assert len(rows) == 2 and all("—" not in row for row in rows), table
    for language in ("es", "en"):
        assert hook.curves_picture(run, figure, language).is_file()


def test_a_view_is_the_picture_its_command_writes_and_the_page_shows_that_command(
    tmp_path, monkeypatch
):
    """Chapters 7-10's pictures (class rows, interpolations, arithmetic, a translator's rows):
    a View runs a ganforge command on the figure's run in the build, the page shows that very
    command, and the picture is the one the command writes when a reader runs it."""
    monkeypatch.setenv("GANFORGE_DOCS_FIGURES_CACHE", str(tmp_path / "cache"))
    config = {**TINY, "sample_every": 6}
    page = "# Vista\n\n<!-- ganforge-figure: walk -->\n"
    folder = write_site(tmp_path / "project", {}, {"index.es.md": page, "index.en.md": page})
    (folder / "docs" / "figures.py").write_text(
        "import runpy\n"
        f"table = runpy.run_path({str(ROOT / 'docs' / 'figures.py')!r})\n"
        "Figure, View = table['Figure'], table['View']\n"
        f"FIGURES = {{'walk': Figure(config={config!r}, samples=0, "
        "views=(View('interpolation', 'latent interp RUN --from 3 --to 7 --steps 5'),), "
        "run_files=('samples/final.png',), caption={'es': 'Un paseo.', 'en': 'A walk.'})}\n"
    )
    site = build_site(folder)
    text = text_of((site / "en/index.html").read_text(encoding="utf-8"))
    text = re.sub(r" \\\n\s*", " ", text)  # the command, unwrapped
    command = "ganforge latent interp runs/walk --from 3 --to 7 --steps 5 --out interpolation.png"
    assert command in text
    assert "runs/walk/samples/final.png" in text
    assert not (site / "figures/walk/samples.png").exists()  # samples=0: no grid

    run = next((tmp_path / "cache").iterdir()) / "run"
    mine = tmp_path / "mine.png"
    assert (
        ganforge.cli.main(
            ["latent", "interp", str(run), *command.split()[4:-2], "--out", str(mine)]
        )
        == 0
    )
    from PIL import Image

    for language in ("es", "en"):
        built = site / f"figures/walk/view-interpolation-{language}.png"
        with Image.open(built) as shown, Image.open(mine) as written:
            assert shown.size == written.size and shown.tobytes() == written.tobytes()
    copied = (site / "figures/walk/file-samples-final.png").read_bytes()
    assert copied == (run / "samples" / "final.png").read_bytes()


def test_a_view_must_name_the_run_and_leave_out_to_the_build(hook):
    from mkdocs.exceptions import PluginError

    view_type = type("View", (), {})
    for command in ("latent interp runs/x --from 1 --to 2", "sample RUN --out x.png"):
        view = view_type()
        view.name, view.command = "v", command
        with pytest.raises(PluginError, match="must name the run RUN and leave --out"):
            hook.view_words(view, "runs/v")

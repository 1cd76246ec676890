"""MkDocs hook: the course's figures, made by ganforge while the site is built, cached by config.

A page line `<!-- ganforge-figure: ID -->` asks for the figure ID of the table in
docs/figures.py (a run's config + what to draw of it). For each figure the pages ask for, the
hook trains the run through the public API (`ganforge.train`, one torch thread, no progress bar),
draws it (`Run.show`: the sample grid, the curve panels in each language) and writes the PNGs
into the built site under figures/ID/; in the page the line becomes the pictures, the caption,
the numbers and events asked for, and the `ganforge train ...` command that makes the same run.

The cache: FIGURES_CACHE (default .cache/docs-figures beside mkdocs.yml, or the folder named by
$GANFORGE_DOCS_FIGURES_CACHE) holds one folder per run, named by the SHA-256 of its canonical
config (the resolved TrainConfig as sorted JSON: a default spelt out or a different key order
gives the same run, any changed option a new one). It holds config.json, the run folder run/
and the pictures drawn of it, pictures/; a build that finds them trains and draws nothing. A run
is trained into a temporary folder and renamed when complete, so an interrupted build leaves no
half run behind. To train everything again, delete the cache folder.

An unknown ID is a warning (so `mkdocs build --strict` fails) and an error box on the page.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import shlex
import shutil
import sys
import textwrap
import time
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.figures")

# on a line of its own; indented (in a tab, an admonition) the figure is indented alike
MARKER = re.compile(
    r"^(?P<indent>[ \t]*)<!--\s*ganforge-figure:\s*(?P<id>[\w.-]+)\s*-->[ \t]*$",
    re.MULTILINE,
)
CACHE_VARIABLE = "GANFORGE_DOCS_FIGURES_CACHE"
DEFAULT_CACHE = ".cache/docs-figures"  # beside mkdocs.yml
TABLE = "figures.py"  # in docs_dir
SITE_FOLDER = "figures"  # figures/ID/samples.png in the built site
# how the build trains (the command shown leaves them out: they change no number)
BUILD_OPTIONS = {"device": "cpu", "progress": False}
UNKEYED = ("out", "progress")  # where the run goes and whether a bar is drawn
COMMAND_WIDTH = 76  # what the code block shows without scrolling
WORDS = {
    "es": {
        "command": "La orden que hizo esta figura",
        "curves": "curvas: {panels}, de {file}",
        "step": "paso",
        "frames": "fotogramas: {files}; ganforge report {run} los une en un GIF",
        "events": "Lo que vio el doctor (`events.jsonl`)",
        "no events": "El doctor no vio ningún problema (`events.jsonl` está vacío).",
        "unknown": "Figura desconocida",
        "and": "y",
    },
    "en": {
        "command": "The command that made this figure",
        "curves": "curves: {panels}, of {file}",
        "step": "step",
        "frames": "frames: {files}; ganforge report {run} strings them into a GIF",
        "events": "What the doctor saw (`events.jsonl`)",
        "no events": "The doctor saw no problem (`events.jsonl` is empty).",
        "unknown": "Unknown figure",
        "and": "and",
    },
}


# --- the table and the cache key ---------------------------------------------------------------


def load_table(docs_dir: str | Path) -> dict:
    """docs/figures.py's FIGURES, read afresh on every build (`mkdocs serve` sees edits)."""
    path = Path(docs_dir) / TABLE
    if not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location("ganforge_docs_figures", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return dict(module.FIGURES)


def canonical_config(options: dict) -> dict:
    """The full config a figure's options train (ganforge's defaults filled in, the model's
    own), with the build's device and without the run's folder: what the cache key hashes."""
    from ganforge.training.loop import new_config  # imports torch: only when a page needs it

    values = new_config({**options, **BUILD_OPTIONS}, {}).to_dict()
    return {name: value for name, value in values.items() if name not in UNKEYED}


def cache_key(options: dict) -> str:
    """SHA-256 of the canonical config as sorted, compact JSON."""
    text = json.dumps(canonical_config(options), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_root(config) -> Path:
    chosen = os.environ.get(CACHE_VARIABLE)
    if chosen:
        return Path(chosen).expanduser().resolve()
    return Path(config.config_file_path).resolve().parent / DEFAULT_CACHE


# --- training and drawing ----------------------------------------------------------------------


def cached_run(options: dict, root: Path):
    """The run of `options` from the cache, trained first if the cache lacks it."""
    import ganforge

    key = cache_key(options)
    folder = root / key
    if not (folder / "run" / "config.json").is_file():
        train_into(options, folder)
    return ganforge.load_run(folder / "run")


def train_into(options: dict, folder: Path) -> None:
    """Train the run in a temporary folder beside `folder`, then rename it: a build stopped
    half-way leaves nothing that looks cached."""
    import torch

    import ganforge

    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "config.json").write_text(
        json.dumps(canonical_config(options), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    said = io.StringIO()  # the doctor's words go to events.jsonl; the build log stays short
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            ganforge.train({**options, **BUILD_OPTIONS, "out": str(partial / "run")})
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise PluginError(f"figure run {folder.name[:12]} ({options}) failed: {exc}") from exc
    finally:
        torch.set_num_threads(threads)
    try:
        partial.rename(folder)
    except OSError:  # another build finished the same run first: keep that one
        shutil.rmtree(partial, ignore_errors=True)
    log.info(
        "figures: trained %s %s on %s in %.1f s (cache %s)",
        options.get("model"),
        options.get("steps"),
        options.get("data"),
        time.perf_counter() - started,
        folder.name[:12],
    )


def drawing_code() -> str:
    """A hash of the code that draws the pictures (this hook, Run.show and the report's grid
    and curves): a picture is drawn again when it changes, the run is not trained again."""
    import ganforge

    package = Path(ganforge.__file__).parent
    digest = hashlib.sha256()
    for path in (Path(__file__), package / "run.py", *sorted((package / "report").glob("*.py"))):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def picture(run, kind: str, parameters: dict, draw) -> Path:
    """The cached picture of `run` drawn by `draw()` (a PIL image) with `parameters`:
    RUN/../pictures/KIND-HASH.png, drawn only if it is not there yet."""
    key = json.dumps({**parameters, "code": drawing_code()}, sort_keys=True)
    name = f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.png"
    path = run.path.parent / "pictures" / name
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        partial = path.with_name(f".{name}.{os.getpid()}")
        draw().save(partial, format="png")
        partial.replace(path)
    return path


def samples_picture(run, figure) -> Path:
    """The grid of `ganforge sample` (a run of points: its points over the real ones)."""
    return picture(
        run,
        "samples",
        {"n": figure.samples, "seed": figure.seed},
        lambda: run.show("samples", n=figure.samples, seed=figure.seed),
    )


FRAME_GAP = 6  # white pixels between two frames


def frame_path(run, step: int) -> Path:
    return run.path / "samples" / f"step_{step:07d}.png"


def frames_picture(run, figure) -> Path:
    """The run's progress pictures at `figure.frames`, in one row."""
    from PIL import Image

    missing = [step for step in figure.frames if not frame_path(run, step).is_file()]
    if missing:
        raise PluginError(
            f"docs/{TABLE}: no progress picture at step {missing[0]} (--sample-every "
            f"{run.config.sample_every})"
        )

    def draw():
        frames = [Image.open(frame_path(run, step)).convert("RGB") for step in figure.frames]
        width = sum(f.width for f in frames) + FRAME_GAP * (len(frames) - 1)
        row = Image.new("RGB", (width, max(f.height for f in frames)), "white")
        left = 0
        for frame in frames:
            row.paste(frame, (left, 0))
            left += frame.width + FRAME_GAP
        return row

    return picture(run, "frames", {"steps": list(figure.frames)}, draw)


def curves_picture(run, figure, language: str) -> Path:
    from ganforge.i18n import current_language, set_language

    def draw():
        before = current_language()
        set_language(language)
        try:
            return run.show("curves", panels=list(figure.curves), title="")
        finally:
            set_language(before)

    parameters = {"panels": list(figure.curves), "language": language}
    return picture(run, f"curves-{language}", parameters, draw)


RUN_WORD = "RUN"  # in a View's command, the figure's run


def view_words(view, run_folder: str) -> list[str]:
    """The view's command as words, the run's folder for RUN, and `--out NAME.png`."""
    words = shlex.split(view.command)
    if RUN_WORD not in words or "--out" in words:
        raise PluginError(
            f"docs/{TABLE}: view '{view.name}' must name the run {RUN_WORD} and leave --out to "
            f"the build: {view.command!r}"
        )
    return [run_folder if word == RUN_WORD else word for word in words] + [
        "--out",
        f"{view.name}.png",
    ]


@functools.cache
def package_code() -> str:
    """A hash of ganforge's source: a view is drawn again when any of it changes (the views
    go through the CLI, the latent tools, the samplers...), its run is not trained again."""
    import ganforge

    digest = hashlib.sha256()
    for path in sorted(Path(ganforge.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def view_picture(run, view, language: str) -> Path:
    """The cached picture of `view` (a ganforge command run in this process on `run`, one
    torch thread, its words in `language`): RUN/../pictures/view-NAME-LANG-HASH.png."""
    import torch

    from ganforge.cli import main

    words = view_words(view, RUN_WORD)
    key = json.dumps({"words": words, "language": language, "code": package_code()})
    name = f"view-{view.name}-{language}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.png"
    path = run.path.parent / "pictures" / name
    if path.is_file():
        return path
    path.parent.mkdir(exist_ok=True)
    partial = path.with_name(f".{name}.{os.getpid()}.png")
    argv = [str(run.path) if w == RUN_WORD else w for w in words[:-1]] + [str(partial)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            code = main([*argv, "--lang", language])
    finally:
        torch.set_num_threads(threads)
    if code != 0 or not partial.is_file():
        raise PluginError(
            f"docs/{TABLE}: view '{view.name}' ({view.command}) failed: {said.getvalue()[-500:]}"
        )
    partial.replace(path)
    return path


def figure_pictures(figure, run, language: str) -> dict[str, Path]:
    """{name in the site's figures/ID/ folder: cached PNG} for the page's language."""
    pictures = {}
    if figure.samples:
        pictures["samples.png"] = samples_picture(run, figure)
    if figure.frames:
        pictures["frames.png"] = frames_picture(run, figure)
    for view in figure.views:
        pictures[f"view-{view.name}-{language}.png"] = view_picture(run, view, language)
    for relative in figure.run_files:
        path = run.path / relative
        if not path.is_file():
            raise PluginError(f"docs/{TABLE}: the run wrote no {relative}")
        pictures["file-" + relative.replace("/", "-")] = path
    if figure.curves:
        pictures[f"curves-{language}.png"] = curves_picture(run, figure, language)
    return pictures


# --- MkDocs events -----------------------------------------------------------------------------


def build_language(config) -> str:
    """The language being built: mkdocs-static-i18n builds each in turn; else the theme's."""
    plugin = config.plugins.get("i18n")
    language = getattr(plugin, "current_language", None) or config.theme.get("language") or "en"
    return language if language in WORDS else "en"


def on_files(files: Files, config) -> Files:
    """Make (or find in the cache) every figure the pages ask for, and add its pictures to
    the site's files, so a page links them as any other image."""
    wanted = sorted(
        {
            match["id"]
            for file in files.documentation_pages()
            for match in MARKER.finditer(file.content_string)
        }
    )
    table = load_table(config.docs_dir)
    known = [name for name in wanted if name in table]
    if not known:
        return files
    root = cache_root(config)
    language = build_language(config)
    started = time.perf_counter()
    runs = {}
    for name in known:
        figure = table[name]
        key = json.dumps(figure.config, sort_keys=True)
        if key not in runs:
            runs[key] = cached_run(figure.config, root)
        for site_name, path in figure_pictures(figure, runs[key], language).items():
            files.append(
                File.generated(config, f"{SITE_FOLDER}/{name}/{site_name}", abs_src_path=str(path))
            )
    log.info("figures: %d figures ready in %.1f s", len(known), time.perf_counter() - started)
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "ganforge-figure" not in markdown:
        return markdown
    table = load_table(config.docs_dir)
    language = getattr(page.file, "locale", None) or build_language(config)
    language = language if language in WORDS else "en"

    def replace(match: re.Match) -> str:
        name = match["id"]
        if name not in table:
            log.warning(
                "%s: unknown figure '%s' (docs/%s defines: %s)",
                page.file.src_uri,
                name,
                TABLE,
                ", ".join(sorted(table)) or "none",
            )
            text = f'!!! failure "{WORDS[language]["unknown"]}: {name}"\n'
        else:
            text = figure_markdown(name, table[name], page, config, language)
        return textwrap.indent(text, match["indent"])

    return MARKER.sub(replace, markdown)


# --- what the page shows -----------------------------------------------------------------------


def figure_markdown(name: str, figure, page, config, language: str) -> str:
    words = WORDS[language]
    run = cached_run(figure.config, cache_root(config))
    here = os.path.dirname(page.file.src_uri)
    images = []
    for site_name in figure_pictures(figure, run, language):
        link = os.path.relpath(f"{SITE_FOLDER}/{name}/{site_name}", here or ".").replace(
            os.sep, "/"
        )
        kind = site_name.split("-")[0].split(".")[0]  # samples, frames, view, file or curves
        alt = figure.alt.get(language, name)
        images.append(f"![{alt}]({link}){{ .ganforge-{kind} loading=lazy }}")
    run_folder = f"runs/{name}"
    lines = [
        f'<figure class="ganforge-figure" id="figure-{name}" markdown>',
        "",
        '<div class="ganforge-figure-images" markdown>',
        "",
        "\n".join(images),
        "",
        "</div>",
        "",
        f"<figcaption markdown>{figure.caption.get(language, '')}</figcaption>",
        "",
        "</figure>",
        "",
    ]
    if figure.numbers:
        lines += [numbers_table(run, figure, words), ""]
    if figure.events:
        lines += [events_list(run, words), ""]
    commands = [train_command(figure.config, run_folder)]
    if figure.samples:
        sample = ["ganforge", "sample", run_folder, "--n", str(figure.samples)]
        out = "points.png" if run.config.point_dims else "grid.png"
        commands.append(wrap_command([*sample, "--seed", str(figure.seed), "--out", out]))
    commands += [wrap_command(["ganforge", *view_words(v, run_folder)]) for v in figure.views]
    if figure.frames:
        files = f"{run_folder}/samples/" + ", ".join(
            frame_path(run, step).name for step in figure.frames
        )
        comment = words["frames"].format(files=files, run=run_folder)
        commands += [
            "# " + line
            for line in textwrap.wrap(comment, COMMAND_WIDTH - 2, break_on_hyphens=False)
        ]
    if figure.run_files:
        listed = ", ".join(f"{run_folder}/{relative}" for relative in figure.run_files)
        commands += ["# " + line for line in textwrap.wrap(listed, COMMAND_WIDTH - 2)]
    if figure.curves:
        from ganforge.i18n import current_language, set_language
        from ganforge.report.plots import panel_title

        before = current_language()
        set_language(language)
        try:
            titles = [
                f"«{panel_title(title)}»" if language == "es" else f'"{title}"'
                for title in figure.curves
            ]
        finally:
            set_language(before)
        listed = (
            ", ".join(titles[:-1]) + f" {words['and']} " + titles[-1]
            if len(titles) > 1
            else titles[0]
        )
        comment = words["curves"].format(panels=listed, file=f"{run_folder}/loss_curves.png")
        commands += [
            "# " + line
            for line in textwrap.wrap(comment, COMMAND_WIDTH - 2, break_on_hyphens=False)
        ]
    lines += [
        f'```bash title="{words["command"]}"',
        *commands,
        "```",
        "",
    ]
    return "\n".join(lines)


def numbers_table(run, figure, words: dict) -> str:
    """The values of `figure.numbers` (metrics.jsonl keys) in the records at `figure.at_steps`
    (default: the first and the last record), as a Markdown table."""
    records = [record for record in run.metrics() if "step" in record]
    by_step: dict = {}
    for record in records:  # an evaluation (--eval-every) is a record of its own at its step
        by_step.setdefault(record["step"], {}).update(record)
    steps = figure.at_steps or (records[0]["step"], records[-1]["step"])
    missing = [step for step in steps if step not in by_step]
    if missing:
        log.warning(
            "docs/%s: no record at step %s (records every %s steps)",
            TABLE,
            missing[0],
            run.config.log_every,
        )
    keys = figure.numbers
    rows = [
        f"| {words['step']} | " + " | ".join(f"`{key}`" for key in keys) + " |",
        "|---:|" + "---:|" * len(keys),
    ]
    for step in steps:
        record = by_step.get(step, {})
        values = " | ".join(number(record.get(key), words) for key in keys)
        rows.append(f"| {step} | {values} |")
    return "\n".join(rows)


def number(value, words: dict) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    # 0.00661, 146, 2095300; a blown-up 2.4e+19 in the scientific notation
    text = f"{value:.0f}" if 1000 <= abs(value) < 1e7 else f"{value:.3g}"
    return text.replace(".", ",") if words is WORDS["es"] else text


def events_list(run, words: dict) -> str:
    """The doctor's events (events.jsonl): each kind once, with the steps it was seen at."""
    steps: dict[str, list[int]] = {}
    for event in run.events():
        steps.setdefault(str(event.get("event")), []).append(int(event.get("step", 0)))
    if not steps:
        return words["no events"]
    items = [
        f"- `{kind}`: {words['step']} " + ", ".join(str(step) for step in found)
        for kind, found in sorted(steps.items(), key=lambda item: item[1][0])
    ]
    return f"**{words['events']}**\n\n" + "\n".join(items)


def train_command(options: dict, out: str) -> str:
    """`ganforge train` with the flags that give `options`, in their order, then `--out`,
    wrapped at COMMAND_WIDTH with backslashes (it pastes into a shell as it is)."""
    actions = train_actions()
    words = ["ganforge", "train"]
    for name, value in options.items():
        action = actions.get(name)
        if action is None:
            raise PluginError(f"docs/{TABLE}: '{name}' is not an option of ganforge train")
        if action.nargs == 0:  # a switch: --spectral-norm, --no-doctor
            if value == action.const:
                words.append(action.option_strings[0])
            continue
        words += [action.option_strings[0], shlex.quote(flag_value(value))]
    words += ["--out", shlex.quote(out)]
    return wrap_command(words)


def flag_value(value) -> str:
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else str(int(value))
    return str(value)


def wrap_command(words: list[str]) -> str:
    """The command on lines of at most COMMAND_WIDTH, never splitting a flag from its value,
    continued with a backslash."""
    units = [" ".join(words[:2])]
    for word in words[2:]:
        if word.startswith("--") or units[-1] == " ".join(words[:2]):
            units.append(word)
        else:
            units[-1] += f" {word}"
    lines = [units[0]]
    for unit in units[1:]:
        if len(lines[-1]) + 1 + len(unit) > COMMAND_WIDTH - 2:
            lines.append(f"    {unit}")
        else:
            lines[-1] += f" {unit}"
    return " \\\n".join(lines)


def train_actions() -> dict:
    """`ganforge train`'s argparse actions by the config field they set."""
    import argparse

    from ganforge.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            train = action.choices["train"]
            # the first flag of a field wins: --ema-decay, not its later alias --ema
            return {a.dest: a for a in reversed(train._actions) if a.option_strings}
    raise PluginError("ganforge's parser has no train command")

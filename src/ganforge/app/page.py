"""The app's web page, built with Gradio (the `app` extra) on top of explorer.py.

Only this module imports gradio, and only `ganforge app` imports it. Every handler turns a
GanforgeError into words in the page's message box (anything unexpected too, with its
traceback in the server's log), so the page never shows a stack trace and the server keeps
serving. A tab that does not apply to the chosen run (Translate for a GAN, the noise tabs for
pix2pix) hides its controls and says why.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import numpy as np

from ganforge import zoo
from ganforge.app import explorer, lab_view
from ganforge.app.catalog import RunCatalog
from ganforge.app.lab import (
    LAB_DATA,
    LAB_G_LOSSES,
    LAB_LOSSES,
    LAB_OPTIMIZERS,
    MAX_PACK,
    MAX_STEPS,
    MAX_STEPS_PER_TICK,
    MAX_UNROLL,
    LabSessions,
    LabSettings,
)
from ganforge.config.sections import LR_DECAYS
from ganforge.errors import GanforgeError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local tool

import gradio as gr  # noqa: E402
from starlette.datastructures import Headers  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402

LOG = logging.getLogger("ganforge.app")
MAX_UPLOAD = "20mb"
CACHE_CLEANUP = (600, 3600)  # every 10 min, uploads and pictures older than an hour are deleted
EVERY_ADDRESS = {"0.0.0.0", "::", "[::]", ""}
SKETCH_PIXELS = 280
NOT_NOISE = "This run translates images (pix2pix): it draws nothing from noise. See Translate."
NOT_TRANSLATOR = "This run draws from noise: translating your images takes a pix2pix run."
LAB_TICK_SECONDS = 1.0  # while playing, a tick trains "steps per tick" steps and redraws
LAB_STEPS_PER_TICK = 50
LAB_INTRO = (
    "Train a GAN on 2-D points live, through the same training as `ganforge train --model mlp` "
    "(the reference's mode-collapse lab, docs/reference/remedies): the frame shows D's verdict "
    "over the plane (green: real, "
    "purple: fake), the real points, G's samples and where G's loss moves them. One training "
    f"per page, at most {MAX_STEPS:,} steps; it stops, and its files are deleted, when the page "
    "closes. The settings apply from Reset."
)
NOISE_TABS = ("samples", "interpolate", "directions", "yours")  # a run that draws from noise
IMAGE_TABS = ("translate",)  # a translator
# the tab buttons a run has no use for are hidden by the class choose_run gives the tabs
# (Gradio 6 does not hide a tab's button on a visible=False update)
HIDDEN_TABS = ", ".join(
    [f".ganforge-translator #tab-{tab}-button" for tab in NOISE_TABS]
    + [f".ganforge-noise #tab-{tab}-button" for tab in IMAGE_TABS]
)
CSS = f"""
#message p, #lab-message p {{ color: #b00020; font-weight: 600; }}
.pixelated img {{ image-rendering: pixelated; }}
{HIDDEN_TABS} {{ display: none !important; }}
"""


NOT_APPLICABLE = object()  # a handler's result: the event does not apply, change nothing


def guarded(function: Callable, fallback: tuple) -> Callable:
    """`function` for a Gradio event: its results, then an empty message; or, when it fails,
    `fallback` for its outputs (None clears an image) and the failure in words. A function
    that returns NOT_APPLICABLE leaves every output as it is, the message too: another event
    queued before it may have just said something."""

    def handler(*args):
        try:
            results = function(*args)
        except GanforgeError as exc:  # its words may hold a file's or a run's name: as text
            return (*fallback, explorer.markdown_text(f"Error: {exc}"))
        except Exception as exc:  # a bug: say so in words, keep the details in the log
            LOG.exception("the app's handler %s failed", function.__name__)
            kind = type(exc).__name__
            words = f"Error: unexpected {kind}: {exc} (see the server's log)"
            return (*fallback, explorer.markdown_text(words))
        if results is NOT_APPLICABLE:
            return (gr.skip(),) * (len(fallback) + 1)
        results = results if isinstance(results, tuple) else (results,)
        return (*results, "")

    # Gradio reads the parameters of what it calls through __wrapped__: a function asking for
    # `progress=gr.Progress()` gets its tracker, passed on in its place among the arguments
    functools.update_wrapper(handler, function)
    return handler


def build_page(runs_dir: str | Path) -> gr.Blocks:
    """The page for the runs under `runs_dir` (catalog.RunCatalog)."""
    catalog = RunCatalog(runs_dir)
    try:
        names = catalog.names()
    except GanforgeError:
        names = []
    folder = explorer.markdown_text(runs_dir)
    with gr.Blocks(title="ganforge app", delete_cache=CACHE_CLEANUP) as page:
        if names and all(zoo.is_zoo(name) for name in names):
            gr.Markdown(
                f"## ganforge · no runs in {folder} yet: generators from the zoo\n"
                "Small generators ganforge trained itself. Train your own with `ganforge "
                "demo` (about 3 minutes), then press *Find runs again*.",
                elem_id="zoo-note",
            )
        else:
            gr.Markdown(f"## ganforge · runs in {folder}")
        with gr.Row():
            run_name = gr.Dropdown(
                names, value=catalog.first_loadable(names), label="Run", elem_id="run", scale=4
            )
            refresh = gr.Button("Find runs again", elem_id="refresh", scale=1)
        top = SimpleNamespace(
            run_name=run_name,
            refresh=refresh,
            info=gr.Markdown(elem_id="run-info"),
            class_name=gr.Dropdown([], label="Class", visible=False, elem_id="class"),
            message=gr.Markdown(elem_id="message"),
        )
        with gr.Tabs(elem_id="tabs") as tabs:
            samples = _samples_tab()
            walk = _interpolation_tab()
            moves = _directions_tab()
            yours = _your_image_tab()
            translate = _translation_tab()
            report = _report_tab()
            lab = _lab_tab()
        top.tabs = tabs
        _connect(page, catalog, top, (samples, walk, moves, yours), translate, report)
        _connect_lab(page, lab, LabSessions())
    return page


# ---- the tabs -------------------------------------------------------------------------------


def _tab_body(title: str, tab_id: str, unavailable: str | None) -> SimpleNamespace:
    """A tab with a note for runs it does not apply to (hidden until then) and a body."""
    parts = SimpleNamespace(tab=gr.Tab(title, id=tab_id, elem_id=f"tab-{tab_id}"))
    with parts.tab:
        if unavailable:
            parts.note = gr.Markdown(unavailable, visible=False, elem_id=f"{tab_id}-note")
        parts.body = gr.Column()
    return parts


def _image(label: str, elem_id: str) -> gr.Image:
    return gr.Image(
        label=label,
        format="png",  # lossless: the page shows the pixels the model made
        interactive=False,
        elem_id=elem_id,
        elem_classes=["pixelated"],
        buttons=["download"],
    )


def _samples_tab() -> SimpleNamespace:
    parts = _tab_body("Samples", "samples", NOT_NOISE)
    with parts.body:
        with gr.Row():
            parts.seed = gr.Number(0, label="Seed", precision=0, elem_id="seed")
            parts.new_seed = gr.Button("New seed", elem_id="new-seed")
        parts.truncation = gr.Slider(
            0.05,
            1,
            value=1,
            step=0.05,
            label="Truncation psi (--truncation: the noise scaled by psi; lower: nearer the "
            "average sample, cleaner and less varied; 1: off)",
            elem_id="truncation",
        )
        parts.grid = _image("Samples of this seed", "grid")
    return parts


def _interpolation_tab() -> SimpleNamespace:
    parts = _tab_body("Interpolate", "interpolate", NOT_NOISE)
    with parts.body:
        with gr.Row():
            parts.seed_a = gr.Number(1, label="Seed A", precision=0, elem_id="seed-a")
            parts.seed_b = gr.Number(2, label="Seed B", precision=0, elem_id="seed-b")
            parts.mode = gr.Radio(["slerp", "lerp"], value="slerp", label="Path", elem_id="mode")
        parts.position = gr.Slider(
            0, 1, value=0.5, step=0.05, label="From A (0) to B (1)", elem_id="position"
        )
        parts.frame = _image("The image at this position", "frame")
        parts.strip = _image(f"The whole path in {explorer.STRIP_FRAMES} steps", "strip")
    return parts


def _directions_tab() -> SimpleNamespace:
    parts = _tab_body("Directions", "directions", NOT_NOISE)
    with parts.body:
        gr.Markdown(
            "The sliders move the sample of the seed along the generator's main directions of "
            "variation (GANSpace: the principal components of its first layer's output, mapped "
            "back to the noise), in standard deviations of the noise."
        )
        parts.seed = gr.Number(0, label="Seed", precision=0, elem_id="direction-seed")
        parts.amounts = [
            gr.Slider(
                -3, 3, value=0, step=0.25, label=f"Direction {j + 1}", elem_id=f"direction-{j + 1}"
            )
            for j in range(explorer.DIRECTIONS)
        ]
        parts.reset = gr.Button("Reset the sliders", elem_id="reset-directions")
        parts.shares = gr.Markdown(elem_id="direction-shares")
        with gr.Row():
            parts.edited = _image("The moved sample", "edited")
            steps = ", ".join(f"{s:+g}" for s in explorer.DIRECTION_STEPS)
            parts.overview = _image(f"One row per direction, alone: {steps}", "overview")
    return parts


def _your_image_tab() -> SimpleNamespace:
    parts = _tab_body("Your image", "yours", NOT_NOISE)
    with parts.body:
        gr.Markdown(
            "Upload an image: the page finds the code whose image looks like it (`ganforge "
            "latent project`), then walks from it to a seed's sample and moves it along the "
            "generator's main directions."
        )
        with gr.Row():
            parts.upload = gr.File(label="Your image", file_types=["image"], elem_id="your-upload")
            parts.steps = gr.Number(
                explorer.YOUR_STEPS, label="Descent steps", precision=0, elem_id="your-steps"
            )
        parts.project = gr.Button("Project", variant="primary", elem_id="project")
        parts.kept = gr.State(None)
        parts.result = gr.Markdown(elem_id="your-result")
        parts.pair = _image("Your image | its reconstruction", "your-pair")
        with gr.Row():
            parts.seed = gr.Number(
                7, label="Walk to the sample of seed", precision=0, elem_id="your-seed"
            )
        parts.walk = _image(
            f"From your image to the seed's sample, {explorer.STRIP_FRAMES} steps", "your-walk"
        )
        steps = ", ".join(f"{s:+g}" for s in explorer.DIRECTION_STEPS)
        parts.overview = _image(
            f"Your image along each direction, alone: {steps}", "your-directions"
        )
    return parts


def _translation_tab() -> SimpleNamespace:
    parts = _tab_body("Translate", "translate", NOT_TRANSLATOR)
    with parts.body:
        gr.Markdown("Upload an image, or draw one in white on black (as edge maps look).")
        with gr.Row():
            parts.upload = gr.File(label="Upload an image", file_types=["image"], elem_id="upload")
            parts.sketch = gr.Sketchpad(
                value={
                    "background": np.zeros((SKETCH_PIXELS, SKETCH_PIXELS), np.uint8),
                    "layers": [],
                    "composite": None,
                },
                type="numpy",
                image_mode="L",
                canvas_size=(SKETCH_PIXELS, SKETCH_PIXELS),
                brush=gr.Brush(
                    colors=["#ffffff"], default_color="#ffffff", color_mode="fixed", default_size=8
                ),
                label="Or draw",
                elem_id="sketch",
            )
        parts.translate_drawing = gr.Button("Translate the drawing", elem_id="translate-drawing")
        parts.translation = _image("Source | translation", "translation")
    return parts


def _report_tab() -> SimpleNamespace:
    parts = _tab_body("Report", "report", None)
    with parts.body:
        gr.Markdown("Training curves, the doctor's events, samples over training, metrics.")
        parts.build = gr.Button("Build the report", elem_id="show-report")
        parts.page = gr.HTML(elem_id="report")
    return parts


def _lab_tab() -> SimpleNamespace:
    parts = SimpleNamespace(tab=gr.Tab("Lab", id="lab", elem_id="tab-lab"))
    start = LabSettings()
    with parts.tab:
        gr.Markdown(LAB_INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                controls = {
                    "data": gr.Dropdown(list(LAB_DATA), label="Data (--data)"),
                    "loss": gr.Dropdown(list(LAB_LOSSES), label="Loss (--loss)"),
                    "g_loss": gr.Radio(list(LAB_G_LOSSES), label="G's bce loss (--g-loss)"),
                    "optimizer": gr.Radio(list(LAB_OPTIMIZERS), label="Optimiser (--optimizer)"),
                    "lr_g": gr.Number(label="G's learning rate (--lr-g)"),
                    "lr_d": gr.Number(label="D's learning rate (--lr-d)"),
                    "lr_decay": gr.Radio(
                        list(LR_DECAYS), label="Rates fall to 0 at the last step (--lr-decay)"
                    ),
                    "pack": gr.Slider(1, MAX_PACK, step=1, label="Pack (--pack; 1: off)"),
                    "minibatch_std": gr.Checkbox(label="Minibatch std (--minibatch-std)"),
                    "feature_matching": gr.Checkbox(label="Feature matching (--feature-matching)"),
                    "unroll": gr.Slider(0, MAX_UNROLL, step=1, label="Unroll D (--unroll; 0: off)"),
                    "doctor_warmup": gr.Number(
                        precision=0, label="Doctor's warm-up (--doctor-warmup)"
                    ),
                    "steps": gr.Number(
                        precision=0, label=f"Stop at step (--steps, <= {MAX_STEPS:,})"
                    ),
                    "seed": gr.Number(precision=0, label="Seed (--seed)"),
                }
                for name, control in controls.items():  # each starts at LabSettings' default
                    control.value = getattr(start, name)
                    control.elem_id = f"lab-{name.replace('_', '-')}"
                parts.settings = [controls[f.name] for f in fields(LabSettings)]
                parts.per_tick = gr.Slider(
                    1,
                    MAX_STEPS_PER_TICK,
                    value=LAB_STEPS_PER_TICK,
                    step=1,
                    label="Steps per tick (and per Step)",
                    elem_id="lab-per-tick",
                )
            with gr.Column(scale=2):
                with gr.Row():
                    parts.play = gr.Button("Play", variant="primary", elem_id="lab-play")
                    parts.pause = gr.Button("Pause", elem_id="lab-pause")
                    parts.step = gr.Button("Step", elem_id="lab-step")
                    parts.reset = gr.Button("Reset", elem_id="lab-reset")
                parts.status = gr.Markdown("Press Play to train.", elem_id="lab-status")
                parts.message = gr.Markdown(elem_id="lab-message")
                with gr.Row():
                    parts.frame = _image("G and D now", "lab-frame")
                    parts.events = gr.Markdown(lab_view.NO_EVENTS, elem_id="lab-events")
                parts.curves = _image("The records", "lab-curves")
        parts.timer = gr.Timer(LAB_TICK_SECONDS, active=False)
    return parts


# ---- what the controls do ---------------------------------------------------------------------


def _connect(page, catalog, top, noise_parts, translate, report) -> None:
    """Wire every control to explorer.py through `guarded` handlers."""
    samples, walk, moves, yours = noise_parts
    pictures = [
        samples.grid,
        walk.frame,
        walk.strip,
        moves.edited,
        moves.overview,
        yours.pair,
        yours.walk,
        yours.overview,
        translate.translation,
        report.page,
    ]
    layout = [
        *[p for parts in (*noise_parts, translate) for p in (parts.note, parts.body)],
        top.tabs,
    ]

    def on(event, function, inputs, outputs, fallback=None, progress="minimal"):
        """`event` (a listener such as button.click, or dependency.then) runs `function`."""
        fallback = (None,) * len(outputs) if fallback is None else fallback
        handler = guarded(function, fallback)
        return event(
            handler,
            inputs,
            [*outputs, top.message],
            show_progress=progress,
            trigger_mode="always_last",  # while a slider moves: its latest position
            concurrency_id="model",  # one model call at a time: CPU cores are not shared
        )

    def choose_run(name):
        run = catalog.open(name)
        choices = explorer.class_choices(run)
        draws = explorer.kind_of(run).draws_from_noise
        shown = [draws] * len(noise_parts) + [not draws]
        return (
            explorer.describe(run),
            gr.Dropdown(
                choices=choices, value=choices[0] if choices else None, visible=bool(choices)
            ),
            *[
                update
                for show in shown
                for update in (gr.Markdown(visible=not show), gr.Column(visible=show))
            ],
            gr.Tabs(
                selected="samples" if draws else "translate",
                elem_classes=["ganforge-noise" if draws else "ganforge-translator"],
            ),
            *[None] * len(pictures),
        )

    def find_runs(current):
        found = catalog.names()
        value = current if current in found else (found[0] if found else None)
        return gr.Dropdown(choices=found, value=value)

    def show_grid(name, seed, class_name, truncation):
        if explorer.kind_of(catalog.open(name)).translator:
            return NOT_APPLICABLE  # a bad upload's words, said meanwhile, stay
        return explorer.sample_grid(catalog.load(name), seed, class_name, truncation)

    def show_frame(name, seed_a, seed_b, position, mode, class_name):
        loaded = catalog.load(name)
        return explorer.interpolation(loaded, seed_a, seed_b, position, mode, class_name)

    def show_directions(name, seed, class_name, *amounts):
        loaded = catalog.load(name)
        picture, overview = explorer.direction_edit(loaded, seed, amounts, class_name)
        return picture, overview, explorer.describe_directions(explorer.directions(loaded))

    def project_file(name, file, steps, class_name, seed, progress=gr.Progress()):  # noqa: B008
        def said(done: int, total: int) -> None:
            progress((done, total), desc="projecting", unit="steps")

        loaded = catalog.load(name)
        pair, text, kept = explorer.project_upload(loaded, file, steps, class_name, said)
        walked = explorer.your_walk(loaded, kept, seed)
        return pair, text, kept, walked, explorer.your_directions(loaded, kept)

    def walk_yours(name, kept, seed):
        return explorer.your_walk(catalog.load(name), kept, seed)

    def translate_file(name, file):
        return explorer.translate_upload(catalog.load(name), file)

    def translate_sketch(name, drawing):
        return explorer.translate_drawing(catalog.load(name), drawing)

    def build_report(name):
        text = explorer.report_page(catalog.open(name))
        return (
            # sandbox: the page is shown, nothing in it runs
            f'<iframe id="report-frame" title="run report" sandbox srcdoc="{html.escape(text)}" '
            'style="width: 100%; height: 900px; border: 1px solid #ddd;"></iframe>'
        )

    # a run that cannot be opened: say why, hide the class selector, clear the pictures
    unopened = ("", gr.Dropdown(visible=False), *[gr.skip()] * len(layout), *[None] * len(pictures))
    grid_inputs = [top.run_name, samples.seed, top.class_name, samples.truncation]
    for event in (page.load, top.run_name.change):
        outputs = [top.info, top.class_name, *layout, *pictures]
        opened = on(event, choose_run, [top.run_name], outputs, unopened)
        on(opened.then, show_grid, grid_inputs, [samples.grid])
    on(top.refresh.click, find_runs, [top.run_name], [top.run_name], (gr.skip(),))

    on(samples.seed.change, show_grid, grid_inputs, [samples.grid])
    on(samples.truncation.release, show_grid, grid_inputs, [samples.grid])
    on(top.class_name.input, show_grid, grid_inputs, [samples.grid])
    samples.new_seed.click(explorer.random_seed, None, samples.seed)

    frame_inputs = [
        top.run_name,
        walk.seed_a,
        walk.seed_b,
        walk.position,
        walk.mode,
        top.class_name,
    ]
    for event in (
        walk.tab.select,
        walk.position.change,
        walk.seed_a.change,
        walk.seed_b.change,
        walk.mode.change,
        top.class_name.input,
    ):
        on(event, show_frame, frame_inputs, [walk.frame, walk.strip])

    move_inputs = [top.run_name, moves.seed, top.class_name, *moves.amounts]
    move_outputs = [moves.edited, moves.overview, moves.shares]
    for event in (
        moves.tab.select,
        moves.seed.change,
        top.class_name.input,
        *(slider.release for slider in moves.amounts),
    ):
        on(event, show_directions, move_inputs, move_outputs)
    zeroed = moves.reset.click(lambda: [0.0] * len(moves.amounts), None, moves.amounts)
    on(zeroed.then, show_directions, move_inputs, move_outputs)

    projected = [yours.pair, yours.result, yours.kept, yours.walk, yours.overview]
    project_inputs = [top.run_name, yours.upload, yours.steps, top.class_name, yours.seed]
    keep = (None, "", gr.skip(), None, None)
    for event in (yours.project.click, yours.upload.upload):
        on(event, project_file, project_inputs, projected, keep, progress="full")
    on(yours.seed.change, walk_yours, [top.run_name, yours.kept, yours.seed], [yours.walk])

    on(
        translate.upload.upload,
        translate_file,
        [top.run_name, translate.upload],
        [translate.translation],
    )
    on(
        translate.translate_drawing.click,
        translate_sketch,
        [top.run_name, translate.sketch],
        [translate.translation],
    )
    on(report.build.click, build_report, [top.run_name], [report.page])


def _connect_lab(page, lab, sessions: LabSessions) -> None:
    """The Lab's buttons and timer: each handler finds the page session's training in
    `sessions` (Gradio's session hash), which the page's unload closes."""
    outputs = [lab.timer, lab.frame, lab.curves, lab.status, lab.events, lab.message]

    def on(event, function):
        """`event` runs `function(session, settings, steps per tick)`, which returns the
        session's training (None: none yet) and says whether it plays on; any error stops the
        timer and is said in words."""

        def run(session, per_tick, *values):
            settings = LabSettings.from_controls(*values)
            return _lab_shown(function(session, settings, per_tick), settings)

        run.__name__ = function.__name__
        handler = guarded(run, (_lab_timer(False), *[gr.skip()] * 4))

        def with_session(request: gr.Request, per_tick, *values):
            return handler(request.session_hash, per_tick, *values)

        with_session.__name__ = function.__name__
        event(
            with_session,
            [lab.per_tick, *lab.settings],
            outputs,
            show_progress="hidden",
            trigger_mode="once",  # a tick still running drops the next one
            concurrency_id="model",  # one model call at a time: CPU cores are not shared
        )

    def play(session, settings, per_tick):
        training = sessions.get(session) or sessions.start(session, settings)
        training.check_not_finished()
        training.playing = True
        return training

    def pause(session, settings, per_tick):
        training = sessions.get(session)
        if training is not None:
            training.playing = False
        return training

    def step(session, settings, per_tick):
        training = sessions.get(session) or sessions.start(session, settings)
        training.playing = False
        training.advance(per_tick)
        return training

    def tick(session, settings, per_tick):
        training = sessions.get(session)
        if training is None:
            raise GanforgeError("this page's training was closed: press Play to start another")
        if training.playing:  # a tick sent before Pause arrived trains no more
            training.advance(per_tick)
            training.playing = not training.finished
        return training

    def reset(session, settings, per_tick):
        training = sessions.start(session, settings)
        training.playing = False
        return training

    for event, function in (
        (lab.play.click, play),
        (lab.pause.click, pause),
        (lab.step.click, step),
        (lab.reset.click, reset),
        (lab.timer.tick, tick),
    ):
        on(event, function)

    def close_training(request: gr.Request):
        sessions.close(request.session_hash)

    page.unload(close_training)


def _lab_shown(training, settings: LabSettings) -> tuple:
    """The timer's state, the frame, the curves, the status line and the events of a page's
    training (None: none yet). The pictures are redrawn only when they would change."""
    if training is None:
        return _lab_timer(False), None, None, "Press Play to train.", lab_view.NO_EVENTS
    records, events = training.records(), training.events()
    cache = training.cache
    if cache.get("frame_step") != training.step:
        cache.update(frame=training.frame(), frame_step=training.step)
    shown = (len(records), len(events))
    if cache.get("curves_of") != shown:
        cache.update(curves=lab_view.draw_curves(records, events), curves_of=shown)
    status = lab_view.describe_progress(
        training.step, training.bound, training.playing, changed=settings != training.settings
    )
    return (
        _lab_timer(training.playing),
        cache["frame"],
        cache["curves"],
        status,
        lab_view.describe_events(events),
    )


def _lab_timer(active: bool) -> dict:
    """An update of the Lab's timer (an update, not a gr.Timer: one made while the page is
    built would be another timer on the page)."""
    return gr.update(active=active)


# ---- serving --------------------------------------------------------------------------------


def allowed_hosts(host: str) -> set[str]:
    """The names a request may give in its Host header: this machine's loopback names and the
    address the page listens on; when that is every address (0.0.0.0, ::), also this machine's
    own name and addresses. Any other name is refused, even one a DNS server points here (DNS
    rebinding: a foreign page that renamed itself to this address)."""
    names = {"127.0.0.1", "localhost", "::1", host.strip("[]").lower()}
    if host in EVERY_ADDRESS:
        machine = socket.gethostname()
        names |= {machine.lower(), socket.getfqdn().lower()}
        try:
            names |= {str(found[4][0]).lower() for found in socket.getaddrinfo(machine, None)}
        except OSError:
            pass
    return names - {""}


class SameOrigin:
    """ASGI middleware in front of the page: a request must address one of `hosts` (400
    otherwise), and one sent by a web page (it has an Origin header) must come from the page's
    own address (403 otherwise), so another site open in the browser can neither upload nor
    run the models."""

    def __init__(self, app, hosts: set[str]):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = Headers(scope=scope)
            host = headers.get("host", "")
            origin = headers.get("origin")
            refusal = None
            if _hostname(host) not in self.hosts:
                refusal = PlainTextResponse("this page does not answer to that Host", 400)
            elif origin is not None and origin.lower() not in (
                f"http://{host}".lower(),
                f"https://{host}".lower(),
            ):
                refusal = PlainTextResponse("requests from another site are refused", 403)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _hostname(host: str) -> str | None:
    """The name in a Host header ("name:port", "[::1]:port"), lower case; None if malformed."""
    if "@" in host or "/" in host:
        return None
    try:
        return urlsplit(f"//{host}").hostname
    except ValueError:
        return None


def start(runs_dir: str | Path, host: str = "127.0.0.1", port: int | None = None):
    """Start serving the page in the background: the running gr.Blocks and its address."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise GanforgeError(f"RUNS_DIR: '{root}' is not a folder (train a run into it first)")
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    page = build_page(root).queue(default_concurrency_limit=1)
    try:
        _, url, _ = page.launch(
            server_name=host,
            server_port=port,
            share=False,
            show_error=False,
            max_file_size=MAX_UPLOAD,
            ssr_mode=False,
            theme=theme,
            css=CSS,
            footer_links=[],
            prevent_thread_lock=True,
            quiet=True,
            app_kwargs={"middleware": [Middleware(SameOrigin, hosts=allowed_hosts(host))]},
        )
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise GanforgeError(f"--host/--port: cannot listen on {host}:{port}: {exc}") from None
    return page, url


def serve(runs_dir: str | Path, host: str = "127.0.0.1", port: int | None = None) -> None:
    """Serve the page until interrupted (Ctrl+C); print its address first."""
    page, url = start(runs_dir, host, port)
    print(f"ganforge app: {url} (runs in {Path(runs_dir)}; Ctrl+C stops)", flush=True)
    page.block_thread()

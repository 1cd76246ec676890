"""`ganforge app` end to end: the real command serves tiny runs, headless Chromium (Debian's
`chromium` package, driven by Playwright) uses the page as a person would, and every step
writes a screenshot to the test's folder and to $GANFORGE_SCREENSHOTS when that is set.

Skipped, with the reason shown, only where Playwright, Gradio or a Chromium binary is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin

import numpy as np
import pytest
from PIL import Image

from ganforge.data import load_dataset
from ganforge.report.grid import image_grid
from ganforge.run import Run
from truncated import closed_form_images, scaled

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no Chromium to drive: install Debian's package (apt-get install chromium)",
        allow_module_level=True,
    )
if importlib.util.find_spec("gradio") is None:  # the server imports it, not this process
    pytest.skip(
        "the app extra is not installed (pip install -e '.[test]')", allow_module_level=True
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')"
)
STARTUP_SECONDS = 120
STEP_MS = 30_000  # the first look at a run loads it (and its directions): well under this
expect = sync_api.expect
expect.set_options(timeout=STEP_MS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(runs_dir, tmp_path_factory):
    """`ganforge app RUNS_DIR --port P` in a subprocess: its `url`, and the `temporary` folder
    it was given (TMPDIR)."""
    with serving(runs_dir, tmp_path_factory.mktemp("app-server")) as running:
        yield running


@contextlib.contextmanager
def serving(runs_dir, folder):
    port = free_port()
    (folder / "tmp").mkdir(parents=True)
    env = {
        **os.environ,
        "GRADIO_TEMP_DIR": str(folder / "gradio"),  # uploads and outputs stay in the test
        "TMPDIR": str(folder / "tmp"),  # the Lab's trainings too (test_the_lab_tab_...)
        "OMP_NUM_THREADS": "1",
    }
    log = open(folder / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ganforge", "app", str(runs_dir), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    started = time.monotonic()
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"ganforge app exited: {(folder / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > STARTUP_SECONDS:
                pytest.fail(f"ganforge app did not answer: {(folder / 'server.log').read_text()}")
            time.sleep(0.5)
        yield SimpleNamespace(url=url, temporary=folder / "tmp")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    assert server_errors((folder / "server.log").read_text()) == []


def server_errors(log: str) -> list[str]:
    """The last line of each traceback in a server log, but for a browser that left in the
    middle of an upload (starlette's ClientDisconnect, which uvicorn logs with its traceback:
    a client's doing, not the app's)."""
    ends = []
    for block in log.split("Traceback (most recent call last):")[1:]:
        lines = [line for line in block.splitlines() if line and not line[0].isspace()]
        ends.append(lines[0] if lines else block)
    return [end for end in ends if not end.startswith("starlette.requests.ClientDisconnect")]


def test_server_errors_forgive_only_a_client_that_left():
    left = "ERROR: x\nTraceback (most recent call last):\n  File a\n"
    left += "starlette.requests.ClientDisconnect\n"
    broken = "Traceback (most recent call last):\n  File b\nValueError: bad\nmore\n"
    assert server_errors("started\n" + left) == []
    assert server_errors(left + broken) == ["ValueError: bad"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh tab on the app, its first run (cgan) shown."""
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    tab.set_default_timeout(STEP_MS)
    tab.goto(server.url)
    expect(tab.locator("#run-info")).to_have_text(re.compile(r"^\s*cgan on digits"))
    expect(tab.locator("#grid img")).to_be_visible()
    yield tab
    tab.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> list[Path]:
    folders = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get("GANFORGE_SCREENSHOTS"):
        folders.append(Path(os.environ["GANFORGE_SCREENSHOTS"]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


@pytest.fixture
def shot(screenshots):
    """`shot(page, "name")`: a full-page screenshot NAME.png in every screenshot folder."""

    def take(tab, name: str) -> None:
        tab.wait_for_timeout(300)  # let the last image finish painting
        picture = tab.screenshot(full_page=True)
        for folder in screenshots:
            (folder / f"{name}.png").write_bytes(picture)

    return take


def choose(tab, dropdown: str, option: str) -> None:
    tab.locator(f"#{dropdown} input").click()
    tab.get_by_role("option", name=option, exact=True).click()


def choose_run(tab, name: str, model: str | None = None) -> None:
    choose(tab, "run", name)
    if model:
        expect(tab.locator("#run-info")).to_have_text(re.compile(rf"^\s*{model} on"))


def image_src(tab, elem_id: str) -> str:
    image = tab.locator(f"#{elem_id} img")
    expect(image).to_be_visible()
    return image.get_attribute("src")


def new_src(tab, elem_id: str, old: str) -> str:
    """The image's src once it differs from `old` and serves a whole picture (while the page
    updates, an image's src can name what is not, or not yet, a picture)."""
    deadline = time.monotonic() + STEP_MS / 1000
    while True:
        expect(tab.locator(f"#{elem_id} img")).not_to_have_attribute("src", old)
        src = image_src(tab, elem_id)
        if fetched(tab, src) is not None:
            return src
        assert time.monotonic() < deadline, f"#{elem_id} never showed a picture: {src}"
        tab.wait_for_timeout(200)


def fetched(tab, src: str) -> np.ndarray | None:
    """The picture at `src`, fetched from the server like the browser did (None: not one)."""
    import io

    body = tab.request.get(urljoin(tab.url, src)).body()
    try:
        return np.asarray(Image.open(io.BytesIO(body)))
    except OSError:
        return None


def pixels(tab, src: str) -> np.ndarray:
    """The image the page shows, fetched from the server like the browser did."""
    for _ in range(10):
        picture = fetched(tab, src)
        if picture is not None:
            return picture
        tab.wait_for_timeout(200)
    raise AssertionError(f"{src} is not a picture")


def shown_grid(tab, expected: np.ndarray) -> None:
    """Wait (up to STEP_MS) until the Samples grid shows `expected`'s pixels."""
    deadline = time.monotonic() + STEP_MS / 1000
    while not np.array_equal(pixels(tab, image_src(tab, "grid")), expected):
        assert time.monotonic() < deadline, "the grid never showed the expected samples"
        tab.wait_for_timeout(200)


def set_slider(tab, elem_id: str, value: float) -> None:
    slider = tab.locator(f"#{elem_id} input[type=range]")
    slider.fill(str(value))
    slider.dispatch_event("pointerup")  # where a person lets go of the handle


def test_the_page_opens_on_the_first_run(page, shot):
    expect(page.locator("#run input")).to_have_value("cgan")
    expect(page.locator("#class input")).to_have_value(re.compile("^every class"))
    assert page.locator("#message").inner_text().strip() == ""
    shot(page, "01-opened-cgan-every-class")


def test_a_new_seed_changes_the_samples(page, shot):
    choose_run(page, "dcgan", "dcgan")
    before = image_src(page, "grid")
    page.locator("#seed input").fill("7")
    page.locator("#seed input").press("Enter")
    typed = new_src(page, "grid", before)
    assert not np.array_equal(pixels(page, typed), pixels(page, before))
    shot(page, "02-dcgan-seed-7")
    page.locator("#new-seed").click()
    expect(page.locator("#seed input")).not_to_have_value("7")
    drawn = new_src(page, "grid", typed)
    assert not np.array_equal(pixels(page, drawn), pixels(page, typed))
    shot(page, "03-dcgan-new-seed")


def test_the_truncation_slider_redraws_the_grid_from_scaled_noise(page, shot, runs_dir):
    run = Run(runs_dir / "dcgan")
    expected = image_grid(closed_form_images(run, 16, 0, scaled(0.5)))[..., 0]
    plain = image_grid(run.sample(16, seed=0))[..., 0]
    choose_run(page, "dcgan", "dcgan")
    shown_grid(page, plain)
    set_slider(page, "truncation", 0.5)
    shown_grid(page, expected)
    assert page.locator("#message").inner_text().strip() == ""
    shot(page, "03b-dcgan-truncation-0.5")


def test_picking_a_class(page, shot):
    every = image_src(page, "grid")
    choose(page, "class", "7")
    sevens = new_src(page, "grid", every)
    rows = pixels(page, every)
    assert rows.shape[0] == 10 * 58 + 2  # one row per class
    assert rows.shape[1] > 6 * 58 + 2 and rows[:, :12].min() < 128  # each named on the left
    assert pixels(page, sevens).shape == (4 * 58 + 2, 4 * 58 + 2)  # 16 sevens
    shot(page, "04-cgan-class-7")


def test_moving_the_interpolation_slider(page, shot):
    choose_run(page, "dcgan", "dcgan")
    page.get_by_role("tab", name="Interpolate").click()
    middle = image_src(page, "frame")
    image_src(page, "strip")
    set_slider(page, "position", 0.0)
    start = new_src(page, "frame", middle)
    set_slider(page, "position", 1.0)
    end = new_src(page, "frame", start)
    frames = [pixels(page, src) for src in (start, middle, end)]
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])
    strip = pixels(page, image_src(page, "strip"))
    cell = frames[0][2:-2, 2:-2][::6, ::6]  # the frame at A, back to 28 px
    assert np.array_equal(strip[2:-2:2, 2:58:2][: cell.shape[0]], cell)  # = the strip's first
    shot(page, "05-dcgan-interpolation-at-1")


def test_moving_a_latent_direction(page, shot):
    choose_run(page, "dcgan", "dcgan")
    page.get_by_role("tab", name="Directions").click()
    still = image_src(page, "edited")
    expect(page.locator("#direction-shares")).to_contain_text("%")
    set_slider(page, "direction-1", 2.5)
    moved = new_src(page, "edited", still)
    assert not np.array_equal(pixels(page, moved), pixels(page, still))
    shot(page, "06-dcgan-direction-1-at-2.5")


@pytest.fixture(scope="module")
def edge_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("uploads") / "edge-map.png"
    sources = load_dataset("mnist-mini-edges", split="test").sources
    Image.fromarray(sources[3, 0].numpy()).resize((128, 128), Image.Resampling.NEAREST).save(path)
    return path


def upload(tab, path: Path) -> None:
    tab.locator("#upload input[type=file]").set_input_files(str(path))


def test_uploading_an_image_to_pix2pix(page, shot, edge_png):
    choose_run(page, "pix2pix", "pix2pix")
    expect(page.get_by_role("tab", name="Translate")).to_have_attribute("aria-selected", "true")
    upload(page, edge_png)
    pair = pixels(page, image_src(page, "translation"))
    scale = 192 // 32
    assert pair.shape == (32 * scale + 4, 2 * (32 * scale + 2) + 2)  # source | translation
    assert page.locator("#message").inner_text().strip() == ""
    shot(page, "07-pix2pix-upload")
    # only the tabs a translator has use for: no Samples, Interpolate or Directions
    for name in ("Samples", "Interpolate", "Directions", "Your image"):
        expect(page.get_by_role("tab", name=name)).to_be_hidden()
    expect(page.get_by_role("tab", name="Report")).to_be_visible()
    shot(page, "08-pix2pix-only-its-tabs")
    choose_run(page, "dcgan", "dcgan")  # and a noise run has no Translate tab
    expect(page.get_by_role("tab", name="Samples")).to_be_visible()
    expect(page.get_by_role("tab", name="Translate")).to_be_hidden()


def test_your_image_is_projected_then_walked_and_moved(page, shot, runs_dir, tmp_path):
    """The Your image tab: an image the dcgan drew, uploaded, comes back close (the page's
    PSNR); the walk to a seed's sample and the directions follow; a new seed redraws the
    walk only."""
    run = Run(runs_dir / "dcgan")
    drawn = tmp_path / "drawn.png"
    Image.fromarray(run.sample(1, seed=3)[0, ..., 0]).save(drawn)
    choose_run(page, "dcgan", "dcgan")
    page.get_by_role("tab", name="Your image").click()
    page.locator("#your-steps input").fill("60")
    page.locator("#your-upload input[type=file]").set_input_files(str(drawn))
    expect(page.locator("#your-result")).to_contain_text("PSNR")
    psnr = float(re.search(r"PSNR ([\d.]+) dB", page.locator("#your-result").inner_text())[1])
    assert psnr > 20, psnr
    pair = pixels(page, image_src(page, "your-pair"))
    side = run.config.resolution * (192 // run.config.resolution)
    assert pair.shape[:2] == (side + 4, 2 * (side + 2) + 2)  # yours | reconstruction
    walk = image_src(page, "your-walk")
    image_src(page, "your-directions")
    assert page.locator("#message").inner_text().strip() == ""
    shot(page, "06b-your-image")
    page.locator("#your-seed input").fill("11")
    page.locator("#your-seed input").press("Enter")
    assert not np.array_equal(pixels(page, new_src(page, "your-walk", walk)), pixels(page, walk))


def test_a_bad_upload_is_explained_and_the_page_keeps_working(page, shot, edge_png, tmp_path):
    choose_run(page, "pix2pix", "pix2pix")
    fake = tmp_path / "holiday.png"
    fake.write_text("not a picture at all, just words")
    upload(page, fake)
    expect(page.locator("#message")).to_contain_text("'holiday.png' is not an image")
    expect(page.locator("#translation img")).to_have_count(0)
    assert "Traceback" not in page.content()
    shot(page, "09-pix2pix-bad-upload")
    page.locator("#upload button[aria-label='Clear']").click()
    upload(page, edge_png)
    expect(page.locator("#translation img")).to_be_visible()
    expect(page.locator("#message")).to_have_text("")


def test_drawing_for_pix2pix(page, shot):
    choose_run(page, "pix2pix", "pix2pix")
    canvas = page.locator("#sketch canvas").first
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 4):  # each move repaints the canvas: a few are enough
        page.mouse.move(x + 12 * step, y + box["height"] * 0.2 * step)
    page.mouse.up()
    page.locator("#translate-drawing").click()
    pair = pixels(page, image_src(page, "translation"))
    assert pair[2:-2, 2 : pair.shape[1] // 2].max() > 0  # the drawn strokes came through
    shot(page, "10-pix2pix-drawing")


def test_the_report_of_a_run(page, shot):
    page.get_by_role("tab", name="Report").click()
    page.locator("#show-report").click()
    report = page.frame_locator("#report iframe")
    expect(report.locator("h1")).to_contain_text("cgan on digits")
    expect(report.locator("h2").first).to_contain_text("Training curves")
    shot(page, "11-cgan-report")


def test_runs_that_cannot_load_are_explained(page, shot):
    choose_run(page, "problems/no-checkpoint")
    expect(page.locator("#message")).to_contain_text("has no checkpoint yet")
    expect(page.locator("#grid img")).to_have_count(0)
    shot(page, "12-run-without-checkpoint")
    choose_run(page, "problems/broken-config")
    expect(page.locator("#message")).to_contain_text("is not valid JSON")
    shot(page, "13-run-with-broken-config")
    choose_run(page, "dcgan", "dcgan")
    expect(page.locator("#grid img")).to_be_visible()
    expect(page.locator("#message")).to_have_text("")


def test_text_from_a_run_folder_is_shown_as_text(page, shot, runs_dir):
    """A run whose config.json names its data with a tag and a Markdown image: the page shows
    those characters and fetches nothing."""
    hostile = runs_dir / "hostile"
    data = '<img src="http://evil.example/a.png"> ![b](http://evil.example/b.png)'
    shutil.copytree(runs_dir / "dcgan", hostile)
    config = json.loads((hostile / "config.json").read_text())
    (hostile / "config.json").write_text(json.dumps({**config, "data": data}))
    fetched = []
    page.on("request", lambda asked: "evil.example" in asked.url and fetched.append(asked.url))
    try:
        page.locator("#refresh").click()
        choose_run(page, "hostile", "dcgan")
        expect(page.locator("#run-info")).to_contain_text(f"dcgan on {data}, draws from noise")
        expect(page.locator("#run-info img")).to_have_count(0)
        expect(page.locator("#grid img")).to_be_visible()
        shot(page, "14-run-data-shown-as-text")
    finally:
        shutil.rmtree(hostile)
    assert fetched == []


def lab_step(tab) -> int:
    """The step the Lab's status line shows."""
    found = re.search(r"Step ([\d,]+)", tab.locator("#lab-status").inner_text())
    return int(found.group(1).replace(",", "")) if found else -1


def test_an_empty_runs_folder_shows_the_zoo(browser, tmp_path, shot):
    """A newcomer with no run yet sees a working page: the zoo's generators."""
    (tmp_path / "runs").mkdir()
    with serving(tmp_path / "runs", tmp_path / "server") as running:
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        tab.set_default_timeout(STEP_MS)
        tab.goto(running.url)
        expect(tab.locator("#zoo-note")).to_contain_text("no runs in")
        expect(tab.locator("#run input")).to_have_value("zoo:dcgan-mnist")
        expect(tab.locator("#run-info")).to_have_text(re.compile(r"^\s*dcgan on mnist-mini"))
        expect(tab.locator("#run-info")).to_contain_text("exported weights")
        shown_grid(tab, image_grid(Run("zoo:dcgan-mnist").sample(16, seed=0))[..., 0])
        shot(tab, "zoo-dcgan-mnist")
        choose_run(tab, "zoo:cgan-mnist", "cgan")
        expect(tab.locator("#class")).to_be_visible()
        shot(tab, "zoo-cgan-mnist")
        tab.close()


def test_the_lab_tab_trains_live_and_reports_a_collapse(page, shot, server):
    """Play, pause, step in the Lab: the frame moves with training, Pause holds the step, and
    with the doctor judging from step 0 (a G that covers none of ring8's 8 modes yet) the
    mode_collapse event appears with its remedies; closing the page removes the training."""
    page.get_by_role("tab", name="Lab").click()
    expect(page.locator("#lab-status")).to_contain_text("Press Play")
    page.locator("#lab-doctor-warmup input").fill("0")
    page.locator("#lab-step").click()  # one tick's worth: 50 steps
    expect(page.locator("#lab-status")).to_contain_text("Step 50 of 5,000")
    stepped = image_src(page, "lab-frame")
    page.locator("#lab-play").click()
    expect(page.locator("#lab-status")).to_contain_text("playing")
    playing = new_src(page, "lab-frame", stepped)
    assert not np.array_equal(pixels(page, playing), pixels(page, stepped))
    expect(page.locator("#lab-events")).to_contain_text("mode_collapse")
    expect(page.locator("#lab-events")).to_contain_text("--pack 2")
    page.locator("#lab-pause").click()
    expect(page.locator("#lab-status")).to_contain_text("paused")
    paused = lab_step(page)
    assert paused >= 125  # the doctor's 5 records of 25 steps
    page.wait_for_timeout(2500)  # two ticks' time: nothing trains
    assert lab_step(page) == paused
    expect(page.locator("#lab-curves img")).to_be_visible()
    assert page.locator("#lab-message").inner_text().strip() == ""
    shot(page, "15-lab-collapse-paused")
    assert len(list(server.temporary.glob("ganforge-lab-*"))) == 1
    page.close()  # the page goes away: its training is closed and its folder removed
    deadline = time.monotonic() + 30
    while list(server.temporary.glob("ganforge-lab-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(server.temporary.glob("ganforge-lab-*")) == []

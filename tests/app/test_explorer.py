"""The page's model side without a browser: grids by seed and class, interpolation frames that
end on the samples of their seeds, direction edits, translating uploads and drawings, the
report, and errors in words for everything a user can get wrong."""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ganforge import GanforgeError
from ganforge.app import explorer
from ganforge.app.catalog import RunCatalog
from ganforge.data import load_dataset
from ganforge.report.grid import image_grid
from ganforge.run import Run
from ganforge.translate import translate_files
from tiny import TINY_POINTS
from truncated import closed_form_class_rows, closed_form_images, scaled


@pytest.fixture(scope="module")
def catalog(runs_dir):
    return RunCatalog(runs_dir)


def gray(picture: np.ndarray) -> np.ndarray:
    return image_grid(picture)[..., 0]


def test_a_grid_is_the_runs_samples_of_that_seed(catalog):
    loaded = catalog.load("dcgan")
    grid = explorer.sample_grid(loaded, 5)
    assert np.array_equal(grid, gray(loaded.run.sample(16, seed=5)))
    assert np.array_equal(explorer.sample_grid(loaded, "5"), grid)
    assert not np.array_equal(explorer.sample_grid(loaded, 6), grid)


def test_class_grids_one_class_or_one_row_per_class(catalog):
    loaded = catalog.load("cgan")
    sevens = explorer.sample_grid(loaded, 3, "7")
    assert np.array_equal(sevens, gray(loaded.run.sample(16, seed=3, labels="7")))
    every = explorer.sample_grid(loaded, 3, explorer.EVERY_CLASS)
    # one row per class, named on the left: the picture of `sample --classes all --n 8`
    labelled = loaded.run.show("classes", n=explorer.PER_CLASS, seed=3)
    assert np.array_equal(every, np.asarray(labelled))
    rows, _ = loaded.run.class_grid(per_class=explorer.PER_CLASS, seed=3)
    unlabelled = image_grid(rows, explorer.PER_CLASS)[..., 0]
    margin = every.shape[1] - unlabelled.shape[1]
    assert margin > 0 and every[:, :margin].min() < 128  # the names, dark on white
    assert np.array_equal(every[:, margin:], unlabelled)
    assert explorer.class_choices(loaded.run) == [explorer.EVERY_CLASS, *map(str, range(10))]
    assert explorer.class_choices(catalog.open("dcgan")) == []
    with pytest.raises(GanforgeError, match="'eleven' is not a class"):
        explorer.sample_grid(loaded, 3, "eleven")


def test_the_truncation_slider_scales_the_noise_of_the_grid(catalog):
    loaded = catalog.load("dcgan")
    plain = explorer.sample_grid(loaded, 5)
    assert np.array_equal(explorer.sample_grid(loaded, 5, None, 1.0), plain)
    half = explorer.sample_grid(loaded, 5, None, 0.5)
    assert np.array_equal(half, gray(closed_form_images(loaded.run, 16, 5, scaled(0.5))))
    assert not np.array_equal(half, plain)
    conditional = catalog.load("cgan")
    every = explorer.sample_grid(conditional, 3, explorer.EVERY_CLASS, 0.5)
    rows = closed_form_class_rows(conditional.run, explorer.PER_CLASS, 3, 0.5)
    unlabelled = image_grid(rows, explorer.PER_CLASS)[..., 0]
    assert np.array_equal(every[:, every.shape[1] - unlabelled.shape[1] :], unlabelled)
    for psi, words in ((0, "above 0"), (1.5, "(0, 1]"), ("x", "not a number")):
        with pytest.raises(GanforgeError, match="^truncation: ") as error:
            explorer.sample_grid(loaded, 5, None, psi)
        assert words in str(error.value)


def enlarged(images: np.ndarray) -> np.ndarray:
    return explorer._picture(images, columns=len(images), large=True)


@pytest.mark.parametrize("mode", ["slerp", "lerp"])
def test_interpolation_ends_on_the_samples_of_its_seeds(catalog, mode):
    loaded = catalog.load("dcgan")
    start, strip = explorer.interpolation(loaded, 11, 12, 0.0, mode)
    end, _ = explorer.interpolation(loaded, 11, 12, 1.0, mode)
    middle, _ = explorer.interpolation(loaded, 11, 12, 0.5, mode)
    assert np.array_equal(start, enlarged(loaded.run.sample(1, seed=11)))
    assert np.array_equal(end, enlarged(loaded.run.sample(1, seed=12)))
    assert not np.array_equal(middle, start) and not np.array_equal(middle, end)
    cell = 28 * 2 + 2  # 28 px enlarged to the grid's 56, plus padding
    assert strip.shape == (cell + 2, explorer.STRIP_FRAMES * cell + 2)


def test_interpolation_of_a_class_run_draws_the_chosen_class_or_all(catalog):
    loaded = catalog.load("cgan")
    one, _ = explorer.interpolation(loaded, 1, 2, 0.0, "slerp", "4")
    assert np.array_equal(one, enlarged(loaded.run.sample(1, seed=1, labels=4)))
    every, strip = explorer.interpolation(loaded, 1, 2, 0.0, "slerp", explorer.EVERY_CLASS)
    assert every.shape[0] == 2 * one.shape[0] - 2  # ten classes in two rows of five
    _, one_strip = explorer.interpolation(loaded, 1, 2, 0.0, "slerp", "4")
    assert strip.shape[0] == 10 * (one_strip.shape[0] - 2) + 2  # a row per class
    margin = strip.shape[1] - one_strip.shape[1]
    assert margin > 0 and strip[:, :margin].min() < 128  # each row named on the left


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((1, 2, 1.5, "slerp"), "position must be in"),
        ((1, 2, 0.5, "cubic"), "'cubic' is not one of"),
        ((-1, 2, 0.5, "slerp"), "seed A: must be a whole number"),
        ((1, "two", 0.5, "slerp"), "seed B: 'two' is not a number"),
    ],
)
def test_interpolation_errors_are_words(catalog, arguments, message):
    with pytest.raises(GanforgeError, match=message):
        explorer.interpolation(catalog.load("dcgan"), *arguments)


def test_direction_sliders_move_the_sample(catalog):
    loaded = catalog.load("dcgan")
    still, overview = explorer.direction_edit(loaded, 4, [0.0] * explorer.DIRECTIONS)
    assert np.array_equal(still, enlarged(loaded.run.sample(1, seed=4)))
    moved, _ = explorer.direction_edit(loaded, 4, [2.0, 0, 0, 0, 0])
    assert not np.array_equal(moved, still)
    cell = 58
    rows, columns = explorer.DIRECTIONS, len(explorer.DIRECTION_STEPS)
    assert overview.shape == (rows * cell + 2, columns * cell + 2)
    assert explorer.directions(loaded) is explorer.directions(loaded)  # computed once
    assert explorer.describe_directions(explorer.directions(loaded)).count("%") == 5


@pytest.fixture(scope="module")
def edge_png(tmp_path_factory):
    """A held-out edge map of the translator's data, as a PNG file."""
    sources = load_dataset("mnist-mini-edges", split="test").sources
    path = tmp_path_factory.mktemp("upload") / "edges.png"
    Image.fromarray(sources[0, 0].numpy()).save(path)
    return path


def test_an_upload_is_translated_as_translate_does(catalog, edge_png, tmp_path):
    loaded = catalog.load("pix2pix")
    pair = explorer.translate_upload(loaded, str(edge_png))
    written = translate_files(loaded.run, edge_png, tmp_path)[0]
    output = np.asarray(Image.open(written))[None, ..., None]
    scale = explorer.LARGE_PIXELS // 32
    cell = 32 * scale + 2
    assert pair.shape == (cell + 2, 2 * cell + 2)
    right = pair[2 : 2 + 32 * scale, cell + 2 : cell + 2 + 32 * scale]
    assert np.array_equal(right[::scale, ::scale], output[0, ..., 0])


def test_a_drawing_is_translated(catalog):
    loaded = catalog.load("pix2pix")
    drawing = np.zeros((280, 280), np.uint8)
    drawing[60:220, 130:150] = 255
    pair = explorer.translate_drawing(loaded, {"composite": drawing, "layers": []})
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[60:220, 130:150] = 255
    assert np.array_equal(explorer.translate_drawing(loaded, rgba), pair)
    with pytest.raises(GanforgeError, match="draw something first"):
        explorer.translate_drawing(loaded, {"composite": None})


def test_bad_uploads_and_wrong_runs_are_explained(catalog, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is text, not a picture")
    pix2pix = catalog.load("pix2pix")
    with pytest.raises(GanforgeError, match="'notes.png' is not an image") as caught:
        explorer.translate_upload(pix2pix, str(fake))
    assert str(tmp_path) not in str(caught.value)  # the server's folders stay private
    with pytest.raises(GanforgeError, match="choose an image file"):
        explorer.translate_upload(pix2pix, None)
    with pytest.raises(GanforgeError, match="pick a pix2pix run"):
        explorer.translate_upload(catalog.load("dcgan"), str(fake))
    with pytest.raises(GanforgeError, match="translates images"):
        explorer.sample_grid(pix2pix, 0)


@pytest.mark.parametrize("seed", [-1, 0.5, "x", None, 2**53])
def test_seeds_are_whole_numbers_in_range(seed):
    with pytest.raises(GanforgeError, match="seed"):
        explorer.parse_seed(seed)


def test_the_report_is_built_without_touching_the_run(catalog, runs_dir, tree_snapshot):
    before = tree_snapshot(runs_dir / "cgan")
    page = explorer.report_page(catalog.open("cgan"))
    assert "Training curves" in page and "cgan on digits" in page
    assert tree_snapshot(runs_dir / "cgan") == before
    text = explorer.describe(catalog.open("problems/no-checkpoint"))
    assert "no checkpoint yet" in text
    assert "z_dim 8" in explorer.describe(catalog.open("dcgan"))
    translator = explorer.describe(catalog.open("pix2pix"))  # it draws from its source image
    assert "translates images" in translator and "z_dim" not in translator


def test_the_core_install_does_not_import_gradio():
    import subprocess
    import sys

    code = (
        "import sys, ganforge, ganforge.cli, ganforge.app.explorer, ganforge.app.catalog; "
        "print('gradio' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def png_declaring(path, width: int, height: int):
    """A real 1x1 PNG whose header then declares `width` x `height` (its CRC fixed)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_an_upload_over_the_pixel_budget_is_refused_from_its_header(catalog, tmp_path):
    """A 9000x9000 PNG upload (81 MP) is refused before decoding, naming the file and the bound;
    Pillow's own decompression-bomb error reads as one line too."""
    pix2pix = catalog.load("pix2pix")
    huge = png_declaring(tmp_path / "huge.png", 9000, 9000)
    with pytest.raises(GanforgeError, match="'huge.png'.*limit of 40 megapixels") as caught:
        explorer.translate_upload(pix2pix, str(huge))
    assert str(tmp_path) not in str(caught.value) and "\n" not in str(caught.value)
    bomb = png_declaring(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(GanforgeError, match="'bomb.png'.*decompression bomb") as caught:
        explorer.translate_upload(pix2pix, str(bomb))
    assert "\n" not in str(caught.value)


HOSTILE = (
    '<img src="http://evil.example/a.png"> ![x](http://evil.example/b.png) '
    "[y](http://evil.example/c) <http://evil.example/d> **z** `c` \\ & &amp; <script>1</script>"
)


def rendered_markdown(text: str) -> str:
    """`text` as CommonMark renders it, raw HTML allowed (as in Gradio's Markdown)."""
    markdown_it = pytest.importorskip("markdown_it", reason="no CommonMark renderer")
    return markdown_it.MarkdownIt("commonmark").render(text)


def shown_text(rendered: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def test_text_from_a_run_folder_shows_as_text_in_markdown(runs_dir, tmp_path):
    """A config.json's `data` with a tag, an image, links and emphasis: the run's description
    shows those characters, and renders no image, link, code or emphasis of theirs."""
    shutil.copytree(runs_dir / "dcgan", tmp_path / "dcgan")
    config = json.loads((tmp_path / "dcgan" / "config.json").read_text())
    (tmp_path / "dcgan" / "config.json").write_text(json.dumps({**config, "data": HOSTILE}))
    rendered = rendered_markdown(explorer.describe(Run(tmp_path / "dcgan")))
    for tag in ("<img", "<a ", "<script", "<code"):
        assert tag not in rendered
    assert rendered.count("<strong>") == 2  # the model's name and the data's, nothing inside
    assert f"dcgan on {HOSTILE}, draws from noise" in shown_text(rendered)


def test_markdown_text_is_one_line_of_plain_characters():
    text = "# heading\n- item\n\n    code\n> quote\n| a | b |\n|---|---|"
    rendered = rendered_markdown(explorer.markdown_text(text))
    assert re.fullmatch(r"<p>[^<]*</p>\n", rendered)
    assert shown_text(rendered).strip() == " ".join(text.split())


def test_a_run_of_points_shows_its_lab_frame_and_refuses_the_image_tools(tmp_path):
    import ganforge

    ganforge.train(
        **TINY_POINTS,
        out=str(tmp_path / "ring"),
    )
    loaded = RunCatalog(tmp_path).load("ring")
    assert "2-D points" in explorer.describe(loaded.run)
    frame = explorer.sample_grid(loaded, 3)
    assert frame.shape[2] == 3 and frame.shape[0] > 200  # a picture, not a grid of samples
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 50
    assert np.array_equal(explorer.sample_grid(loaded, 3), frame)  # the seed decides it
    assert not np.array_equal(explorer.sample_grid(loaded, 4), frame)
    with pytest.raises(GanforgeError, match="truncation: a run of points"):
        explorer.sample_grid(loaded, 3, None, 0.5)
    for tool in (
        lambda: explorer.interpolation(loaded, 1, 2, 0.5),
        lambda: explorer.directions(loaded),
    ):
        with pytest.raises(GanforgeError, match="draws points, not images"):
            tool()

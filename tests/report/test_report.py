"""Sample grids (PNG), raw samples (NPZ) and training-curve plots."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from ganforge import GanforgeError
from ganforge.config import TrainConfig
from ganforge.models import describe_model
from ganforge.report import image_grid, plot_training_curves, save_images
from ganforge.report.grid import MIN_CELL_PIXELS
from ganforge.report.plots import curve_panels, run_panels

# the panels of a run of a plain GAN
GAN_PANELS = run_panels(describe_model(TrainConfig(model="mlp", resolution=8, channels=1)))


def random_images(n, size, channels, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


@pytest.mark.parametrize(("n", "columns"), [(16, None), (5, None), (7, 2), (1, None)])
def test_image_grid_shape(n, columns):
    size, padding = 28, 2
    images = random_images(n, size, 1)
    grid = image_grid(images, columns, padding=padding)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cell = size * max(1, math.ceil(MIN_CELL_PIXELS / size))
    assert grid.dtype == np.uint8
    assert grid.shape == (rows * (cell + padding) + padding, cols * (cell + padding) + padding, 1)


def test_image_grid_places_each_image_and_pads_in_white():
    images = random_images(6, 64, 3)  # big enough not to be enlarged
    grid = image_grid(images, columns=3, padding=2)
    assert grid.shape == (2 * 66 + 2, 3 * 66 + 2, 3)
    for index, image in enumerate(images):
        row, col = divmod(index, 3)
        top, left = 2 + row * 66, 2 + col * 66
        assert np.array_equal(grid[top : top + 64, left : left + 64], image)
    assert (grid[:2] == 255).all() and (grid[:, :2] == 255).all()


def test_small_images_are_enlarged_by_whole_pixels():
    images = random_images(4, 8, 1)
    grid = image_grid(images, columns=2, padding=0)
    scale = math.ceil(MIN_CELL_PIXELS / 8)
    assert grid.shape == (2 * 8 * scale, 2 * 8 * scale, 1)
    first = grid[: 8 * scale, : 8 * scale, 0]
    assert np.array_equal(first[::scale, ::scale], images[0, :, :, 0])


@pytest.mark.parametrize(("channels", "mode"), [(1, "L"), (3, "RGB")])
def test_save_png_grid(tmp_path, channels, mode):
    images = random_images(9, 28, channels)
    path = save_images(images, tmp_path / "grid.png")
    assert path == tmp_path / "grid.png"
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.mode == mode
        pixels = np.asarray(picture)
    expected = image_grid(images)
    assert np.array_equal(pixels, expected[..., 0] if channels == 1 else expected)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temporary file left


def test_save_jpeg(tmp_path):
    path = save_images(random_images(4, 28, 3), tmp_path / "grid.jpg")
    with Image.open(path) as picture:
        assert picture.format == "JPEG"


def test_save_npz(tmp_path):
    images = random_images(5, 28, 1)
    labels = np.arange(5)
    save_images(images, tmp_path / "s.npz")
    save_images(images, tmp_path / "l.npz", labels=labels)
    with np.load(tmp_path / "s.npz") as data:
        assert list(data.keys()) == ["images"]
        assert data["images"].dtype == np.uint8
        assert np.array_equal(data["images"], images)
    with np.load(tmp_path / "l.npz") as data:
        assert np.array_equal(data["labels"], labels)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_unknown_suffix(tmp_path):
    with pytest.raises(GanforgeError, match="^--out: .*x.gif"):
        save_images(random_images(1, 8, 1), tmp_path / "x.gif")
    assert not list(tmp_path.iterdir())


def test_plot_training_curves(tmp_path):
    records = [
        {
            "step": s,
            "loss_d": 1.0 / s,
            "loss_g": 0.5 + s / 10,
            "d_real": 0.6,
            "d_fake": 0.4,
            "grad_norm_discriminator": 0.1 * s,
            "grad_norm_generator": 1.0,
            "d_accuracy": 0.5,
        }
        for s in range(1, 6)
    ]
    path = plot_training_curves(records, tmp_path / "curves.png", GAN_PANELS, "title")
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        width, height = picture.size
    # four panels side by side: a wide picture
    assert width > 2 * height
    # fewer series, fewer panels
    narrow = plot_training_curves([{"step": 1, "loss_d": 1.0}], tmp_path / "one.png", GAN_PANELS)
    with Image.open(narrow) as picture:
        assert picture.size[0] < width


def test_diversity_and_penalty_panels_only_when_their_keys_are_logged(tmp_path):
    plain = [{"step": s, "loss_d": 1.0, "loss_g": 0.7, "d_accuracy": 0.6} for s in range(1, 6)]
    titles = [name for name, _ in curve_panels(plain, GAN_PANELS)]
    assert titles == ["Losses", "Discriminator accuracy"]
    doctor = [{**r, "diversity": 0.5 + r["step"], "diversity_real": 6.0} for r in plain]
    with_r1 = [{**r, "r1": 0.01, "gp": "n/a"} for r in doctor]  # gp not a number: left out
    panels = dict(curve_panels(with_r1, GAN_PANELS))
    assert list(panels) == [
        "Losses",
        "Discriminator accuracy",
        "Penalties (--gp, --r1, --r2)",  # the family's own panels first
        "Diversity (doctor)",
    ]
    assert list(panels["Diversity (doctor)"]) == ["diversity", "diversity_real"]
    assert panels["Diversity (doctor)"]["diversity"][0] == (1.0, 1.5)
    assert list(panels["Penalties (--gp, --r1, --r2)"]) == ["r1"]
    both = [{**r, "gp": 0.3} for r in with_r1]
    assert list(dict(curve_panels(both, GAN_PANELS))["Penalties (--gp, --r1, --r2)"]) == [
        "gp",
        "r1",
    ]
    # in the picture: four panels make one row, five two rows of three and two
    with Image.open(plot_training_curves(with_r1, tmp_path / "four.png", GAN_PANELS)) as picture:
        four = picture.size
    with_eval = [*both, {"step": 5, "eval_fid": 40.0, "eval_best": True}]
    with Image.open(plot_training_curves(with_eval, tmp_path / "five.png", GAN_PANELS)) as picture:
        five = picture.size
    assert five[0] == pytest.approx(0.75 * four[0], rel=0.02)
    assert five[1] == pytest.approx(2 * four[1], rel=0.05)


def test_plot_nothing_to_plot(tmp_path):
    assert plot_training_curves([], tmp_path / "a.png", GAN_PANELS) is None
    assert plot_training_curves([{"step": 1, "other": 2.0}], tmp_path / "b.png", GAN_PANELS) is None
    assert not list(tmp_path.iterdir())


def test_plot_skips_values_that_are_not_finite_numbers(tmp_path):
    """metrics.jsonl edited by hand or damaged on disk: strings, nulls, huge or infinite
    numbers are left out of the curves instead of stopping the run that draws them."""
    records = [
        {"step": 1, "loss_d": 1.0, "loss_g": "0.5"},
        {"step": 2, "loss_d": None, "loss_g": [1]},
        {"step": 3, "loss_d": math.inf, "loss_g": 10**400},
        {"step": 4, "loss_d": True, "loss_g": {"x": 1}},
        {"step": 10**400, "loss_d": 0.5},
    ]
    path = plot_training_curves(records, tmp_path / "curves.png", GAN_PANELS)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
    assert plot_training_curves(records[1:], tmp_path / "none.png", GAN_PANELS) is None

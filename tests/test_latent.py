"""Latent tools: lerp/slerp, interpolation end frames equal to the samples of their seeds (for
a GAN, a conditional GAN and the VAE), vector arithmetic on averaged codes, looping walks,
GIF frame counts, and one-line errors from `ganforge latent`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.latent import (
    LatentSpace,
    arithmetic_code,
    interpolation_codes,
    lerp,
    loop_codes,
    seed_codes,
    slerp,
)
from ganforge.report.grid import image_grid
from ganforge.sampling import Truncation, truncate_latent
from tiny import TINY_OPTIONS, translator_options

TINY = {**TINY_OPTIONS, "steps": 4, "log_every": 2}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs of a GAN, a class-conditional GAN and the VAE."""
    root = tmp_path_factory.mktemp("latent")
    return {
        model: ganforge.train(**{**TINY, "model": model, "out": str(root / model)})
        for model in ("dcgan", "cgan", "vae")
    }


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, (word, err)
    return err


# ---- codes ---------------------------------------------------------------------------------


def test_lerp_and_slerp_are_exact_at_the_ends():
    torch.manual_seed(0)
    a, b = torch.randn(16), torch.randn(16) * 3
    for interpolate in (lerp, slerp):
        assert torch.equal(interpolate(a, b, 0.0), a)
        assert torch.equal(interpolate(a, b, 1.0), b)
    codes = interpolation_codes(a, b, 7, "slerp")
    assert codes.shape == (7, 16) and torch.equal(codes[0], a) and torch.equal(codes[-1], b)


def test_slerp_keeps_the_norm_between_codes_of_equal_norm():
    torch.manual_seed(1)
    a, b = torch.randn(100), torch.randn(100)
    b = b / b.norm() * a.norm()
    norms = interpolation_codes(a, b, 21, "slerp").norm(dim=1)
    assert torch.allclose(norms, a.norm().expand(21), rtol=1e-5)
    # lerp cuts the corner: its midpoint is well inside the sphere
    assert lerp(a, b, 0.5).norm() < 0.8 * a.norm()


def test_slerp_follows_the_formula_on_any_codes():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=10), rng.normal(size=10) * 2.5
    omega = np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    for t in (0.1, 0.37, 0.5, 0.9):
        expected = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
        got = slerp(torch.from_numpy(a), torch.from_numpy(b), t).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_slerp_of_parallel_codes_is_lerp():
    a = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(slerp(a, 2 * a, 0.25), lerp(a, 2 * a, 0.25))


def test_arithmetic_on_codes_matches_the_formula():
    torch.manual_seed(3)
    a, b, c = torch.randn(3, 8), torch.randn(2, 8), torch.randn(4, 8)
    expected = a.mean(0) - b.mean(0) + c.mean(0)
    assert torch.allclose(arithmetic_code(a, b, c), expected.unsqueeze(0))


def test_a_walk_loops_through_its_keys():
    keys = torch.randn(3, 8)
    path = loop_codes(keys, 4)
    assert path.shape == (12, 8)
    for k in range(3):
        assert torch.allclose(path[4 * k], keys[k])
    with pytest.raises(GanforgeError, match="^--frames:"):
        loop_codes(keys, 0)


# ---- a run's images -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["lerp", "slerp"])
@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
def test_interpolation_end_frames_are_the_samples_of_their_seeds(runs, model, mode):
    run = runs[model]
    label = "3" if model == "cgan" else None
    frames = LatentSpace.of_run(run, class_=label).interpolate(11, 42, steps=6, mode=mode)
    assert frames.shape == (6, 28, 28, 1) and frames.dtype == np.uint8
    assert np.array_equal(frames[0], run.sample(1, seed=11, labels=label)[0])
    assert np.array_equal(frames[-1], run.sample(1, seed=42, labels=label)[0])
    assert not np.array_equal(frames[0], frames[-1])


def test_arithmetic_grid_shows_the_groups_and_decodes_the_result(runs):
    run = runs["dcgan"]
    space = LatentSpace.of_run(run)
    grid, columns, code = space.arithmetic([1, 2, 3], [4, 5], [6])
    family = run.load()
    a, b, c = (seed_codes(family, s) for s in ([1, 2, 3], [4, 5], [6]))
    assert torch.allclose(code, (a.mean(0) - b.mean(0) + c.mean(0)).unsqueeze(0))
    assert columns == 4 and grid.shape == (16, 28, 28, 1)  # rows a, b, c, result
    assert np.array_equal(grid[0], run.sample(1, seed=1)[0])  # a's first sample
    assert np.array_equal(grid[4], run.sample(1, seed=4)[0])  # b's first
    assert np.array_equal(grid[12], space.images(code)[0])  # the result
    assert (grid[13:] == 255).all()  # white padding


def test_interp_gif_has_one_frame_per_step_and_png_one_row(runs, tmp_path, capsys):
    # (a GIF merges identical neighbouring frames: this needs a run whose frames all differ)
    run = str(runs["dcgan"].path)
    assert main(["latent", "interp", run, "--from", "0", "--to", "9", "--steps", "7",
                 "--out", str(tmp_path / "i.gif")]) == 0  # fmt: skip
    with Image.open(tmp_path / "i.gif") as gif:
        assert gif.n_frames == 7
    assert main(["latent", "interp", run, "--from", "0", "--to", "9", "--steps", "5",
                 "--mode", "lerp", "--out", str(tmp_path / "i.png")]) == 0  # fmt: skip
    with Image.open(tmp_path / "i.png") as png:
        assert png.width > 4 * png.height  # one row of 5


def test_walk_gif_frames_and_arith_png(runs, tmp_path):
    run = str(runs["dcgan"].path)
    out = tmp_path / "walk.gif"
    assert main(["latent", "walk", run, "--keys", "3", "--frames", "5", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 15
    out = tmp_path / "arith.png"
    assert main(["latent", "arith", run, "--a", "1,2", "--b", "3", "--c", "4,5,6",
                 "--out", str(out)]) == 0  # fmt: skip
    assert out.is_file()


def test_a_conditional_run_draws_the_class_given(runs, tmp_path):
    run = runs["cgan"]
    out = tmp_path / "seven.png"
    assert main(["latent", "interp", str(run.path), "--from", "1", "--to", "2",
                 "--class", "7", "--out", str(out)]) == 0  # fmt: skip
    frames = LatentSpace.of_run(run, class_=7).interpolate(1, 2, steps=3)
    assert np.array_equal(frames[0], run.sample(1, seed=1, labels=7)[0])


@pytest.mark.parametrize(
    "argv, words",
    [
        (["interp", "{dcgan}", "--from", "1", "--to", "2", "--mode", "cubic"], ["--mode", "cubic"]),
        (["interp", "{dcgan}", "--from", "1", "--to", "2", "--steps", "1"], ["--steps"]),
        (["interp", "{dcgan}", "--from", "1", "--to", "2", "--out", "x.bmp"], ["--out", "x.bmp"]),
        (["interp", "{dcgan}", "--from", "1", "--to", "2", "--class", "3"], ["--class"]),
        (["interp", "{cgan}", "--from", "1", "--to", "2"], ["--class", "class-conditional"]),
        (["interp", "{cgan}", "--from", "1", "--to", "2", "--class", "11"], ["--class", "11"]),
        (["interp", "{dcgan}", "--from", "-1", "--to", "2"], ["seed -1"]),
        (["arith", "{dcgan}", "--a", "1,x", "--b", "2", "--c", "3"], ["--a", "1,x"]),
        (["arith", "{dcgan}", "--a", "1", "--b", "2", "--c", "3", "--out", "a.gif"], ["--out"]),
        (["walk", "{dcgan}", "--keys", "1"], ["--keys"]),
        (["recon", "{dcgan}", "{dcgan}"], ["dcgan", "no encoder"]),
    ],
)
def test_latent_errors_are_one_line(runs, capsys, monkeypatch, tmp_path, argv, words):
    monkeypatch.chdir(tmp_path)
    paths = {model: str(run.path) for model, run in runs.items()}
    argv = [arg.format(**paths) for arg in argv]
    assert main(["latent", *argv]) == 2
    one_line_error(capsys, *words)


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    options = {**TINY, **translator_options("pix2pix"), "model": "pix2pix", "steps": 1}
    return ganforge.train(**options, out=str(tmp_path_factory.mktemp("p2p") / "run"))


def test_a_translator_has_no_latent_space(translator, tmp_path, capsys):
    assert main(["latent", "walk", str(translator.path), "--out", str(tmp_path / "w.gif")]) == 2
    one_line_error(capsys, "pix2pix", "translate")


# ---- truncation ------------------------------------------------------------------------------

TRUNCATIONS = [Truncation(0.5), Truncation(0.8, "resample")]


@pytest.mark.parametrize("truncation", TRUNCATIONS, ids=str)
@pytest.mark.parametrize("model", ["dcgan", "cgan", "vae"])
def test_truncated_interpolation_ends_on_the_truncated_samples(runs, model, truncation):
    run = runs[model]
    label = "3" if model == "cgan" else None
    space = LatentSpace.of_run(run, class_=label, truncation=truncation)
    frames = space.interpolate(11, 42, steps=4)
    assert np.array_equal(frames[0], run.sample(1, 11, labels=label, truncation=truncation)[0])
    assert np.array_equal(frames[-1], run.sample(1, 42, labels=label, truncation=truncation)[0])
    assert not np.array_equal(frames[0], run.sample(1, seed=11, labels=label)[0])


def test_truncated_seed_codes_are_the_closed_form(runs):
    family = runs["dcgan"].load()
    plain = seed_codes(family, [5, 6])
    assert torch.equal(seed_codes(family, [5, 6], Truncation(0.5)), 0.5 * plain)
    cut = seed_codes(family, [5, 6], Truncation(0.3, "resample"))
    inside = plain.abs() <= 0.3
    assert cut.abs().max() <= 0.3 and torch.equal(cut[inside], plain[inside])
    for seed, code in zip([5, 6], cut):  # each seed's redraws continue its own generator
        generator = torch.Generator().manual_seed(seed)
        z = family.sample_latent(1, generator=generator)
        assert torch.equal(truncate_latent(z, 0.3, "resample", generator)[0], code)


def test_cli_latent_truncation_draws_the_truncated_codes(runs, tmp_path, capsys):
    run = runs["dcgan"]
    space = LatentSpace.of_run(run)
    out = tmp_path / "walk.png"
    flags = ["--keys", "2", "--frames", "1", "--seed", "4", "--out", str(out)]
    assert main(["latent", "walk", str(run.path), *flags, "--truncation", "0.5"]) == 0
    assert "truncation psi 0.5 (scale)" in capsys.readouterr().out
    keys = space.family.sample_latent(2, generator=torch.Generator().manual_seed(4))
    with Image.open(out) as png:
        assert np.array_equal(np.asarray(png), gray_grid(space.images(0.5 * keys), 1))
        assert not np.array_equal(np.asarray(png), gray_grid(space.images(keys), 1))
    out = tmp_path / "interp.png"
    flags = ["--from", "1", "--to", "2", "--steps", "2", "--out", str(out)]
    assert main(["latent", "interp", str(run.path), *flags, "--truncation", "0.5"]) == 0
    ends = space.family.sample_latent(1, generator=torch.Generator().manual_seed(1))
    with Image.open(out) as png:
        assert np.array_equal(np.asarray(png)[:, :60], gray_grid(space.images(0.5 * ends)))


def gray_grid(frames: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Frames as `ganforge latent` writes them (one row by default; gray: no channel axis)."""
    return image_grid(frames, columns or len(frames))[..., 0]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["walk", "{dcgan}", "--truncation", "0"], ["--truncation", "above 0"]),
        (
            ["arith", "{dcgan}", "--a", "1", "--b", "2", "--c", "3", "--truncation", "1.2"],
            ["--truncation", "(0, 1]"],
        ),  # fmt: skip
        (
            ["interp", "{dcgan}", "--from", "1", "--to", "2", "--truncation-mode", "resample"],
            ["--truncation PSI"],
        ),  # fmt: skip
        (["walk", "{p2p}", "--truncation", "0.5"], ["--truncation", "translates images"]),
    ],
)
def test_cli_latent_bad_truncation_is_one_line(
    runs, translator, capsys, monkeypatch, tmp_path, argv, words
):
    monkeypatch.chdir(tmp_path)
    paths = {"dcgan": str(runs["dcgan"].path), "p2p": str(translator.path)}
    assert main(["latent", *[arg.format(**paths) for arg in argv]]) == 2
    one_line_error(capsys, *words)
    assert not list(tmp_path.iterdir())


def test_the_seed_gallery_shows_each_seeds_own_sample_captioned(runs, tmp_path):
    run = runs["dcgan"]
    gallery = LatentSpace.of_run(run).gallery([5, 6, 7])
    for seed, image in zip((5, 6, 7), gallery):  # what `sample --n 1 --seed S` draws
        assert np.array_equal(image, run.sample(1, seed=seed)[0])
    out = tmp_path / "gallery.png"
    argv = ["latent", "gallery", str(run.path), "--n", "6", "--first", "5", "--columns", "3"]
    assert main([*argv, "--out", str(out)]) == 0
    with Image.open(out) as picture:
        side = run.config.resolution * 2  # 28 px cells are drawn twice as large
        assert picture.height > 2 * (side + 2) + 2  # two rows, each with its caption strip
        assert picture.width == 3 * (side + 2) + 2


def test_arith_and_class_grids_label_their_rows(runs, tmp_path):
    run = runs["dcgan"]
    plain, labelled = tmp_path / "plain.png", tmp_path / "arith.png"
    groups = ["--a", "1,2", "--b", "3", "--c", "4"]
    assert main(["latent", "arith", str(run.path), *groups, "--out", str(labelled)]) == 0
    grid, columns, _code = LatentSpace.of_run(run).arithmetic([1, 2], [3], [4])
    from ganforge.report import save_images

    save_images(grid, plain, columns=columns)
    with Image.open(labelled) as a, Image.open(plain) as b:
        assert a.height == b.height and a.width > b.width  # a margin for "a: seeds 1,2, ..."
    classes = tmp_path / "classes.png"
    assert main(["sample", str(runs["cgan"].path), "--classes", "3,5", "--n", "4",
                 "--out", str(classes)]) == 0  # fmt: skip
    with Image.open(classes) as picture:
        side = runs["cgan"].config.resolution * 2
        assert picture.width > 4 * (side + 2) + 2  # the class names' margin


@pytest.mark.parametrize(
    "flags, words",
    [(["--n", "0"], ["--n", "at least 1"]), (["--columns", "0"], ["--columns"]),
     (["--first", "-3"], ["--first"]), (["--n", "100000"], ["--n"])],
)  # fmt: skip
def test_gallery_errors_are_one_line(runs, capsys, tmp_path, flags, words):
    out = str(tmp_path / "g.png")
    assert main(["latent", "gallery", str(runs["dcgan"].path), *flags, "--out", out]) == 2
    one_line_error(capsys, *words)

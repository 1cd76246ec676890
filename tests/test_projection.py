"""`ganforge latent project`: real images into the latent space. The descent finds images the
generator can draw (its own samples come back close), each image's code is found alone, a VAE
starts from its encoder, the codes feed `latent interp` and `latent arith`, and bad input is
refused before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import GanforgeError, projection
from ganforge.cli import main
from ganforge.data import to_uint8
from ganforge.latent import LatentSpace
from ganforge.metrics import load_extractor
from ganforge.modules import eval_mode
from ganforge.projection import Objective, project, project_files
from tiny import TINY_OPTIONS, translator_options

TINY = {**TINY_OPTIONS, "steps": 30, "log_every": 10}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("projection")
    return {
        model: ganforge.train(**{**TINY, "model": model, "out": str(root / model)})
        for model in ("dcgan", "cgan", "vae")
    }


@pytest.fixture(scope="module")
def extractor():
    return load_extractor("mnist")


def drawn(run, seed: int, n: int, labels=None) -> tuple[torch.Tensor, torch.Tensor]:
    """n images the run's generator draws (uint8 NCHW) and the codes they were drawn from."""
    family = run.load()
    network = run.generator()
    z = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    with eval_mode(network):
        return to_uint8(family.sample(network, z, labels)), z


def write_pngs(folder, images: torch.Tensor) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(folder / f"image_{i}.png")


def test_the_descent_brings_the_generators_own_images_back(runs, extractor, monkeypatch):
    """An image G drew is reachable: on the pixel error alone the descent must find it (far
    closer than the best random start); with the whole objective every image must end no
    worse, by that objective, than where it started."""
    run = runs["dcgan"]
    targets, _ = drawn(run, seed=123, n=6)
    family, network = run.load(), run.generator()
    start = project(family, network, targets, extractor, steps=0)
    found = project(family, network, targets, extractor, steps=150)
    assert found.start == start.start == "the best of 64 random codes"
    objective = Objective(family, network, extractor, targets)
    with torch.no_grad(), eval_mode(network):
        assert torch.all(objective(found.codes, None) <= objective(start.codes, None) + 1e-6)
    monkeypatch.setattr(projection, "FEATURE_WEIGHT", 0.0)
    monkeypatch.setattr(projection, "PRIOR_WEIGHT", 0.0)
    pixels = project(family, network, targets, extractor, steps=150)
    assert float(pixels.psnr.min()) > 40 > float(start.psnr.max()) + 10, (start.psnr, pixels.psnr)


def test_each_image_is_projected_alone(runs, extractor):
    """Batching changes nothing: an image's code is the same alone as with others."""
    run = runs["dcgan"]
    images, _ = drawn(run, seed=5, n=3)
    family, network = run.load(), run.generator()
    together = project(family, network, images, extractor, steps=20)
    alone = project(family, network, images[:1], extractor, steps=20)
    torch.testing.assert_close(together.codes[:1], alone.codes, atol=1e-4, rtol=0)
    again = project(family, network, images, extractor, steps=20)
    assert torch.equal(again.codes, together.codes)  # same images, same seed: same codes


def test_a_vae_starts_from_its_encoder(runs, extractor):
    run = runs["vae"]
    family, network = run.load(), run.generator()
    images, _ = drawn(run, seed=9, n=4)
    result = project(family, network, images, extractor, steps=0)
    assert result.start == "the encoder's code"
    with eval_mode(*family.networks.values()):
        mu, _ = family.encode(images.float() / 127.5 - 1)
    torch.testing.assert_close(result.codes, mu)
    assert torch.equal(result.reconstructions, family.reconstruct(network, images))


def test_the_codes_it_writes_feed_interp_and_arith(runs, tmp_path, capsys):
    run = runs["dcgan"]
    images, _ = drawn(run, seed=77, n=3)
    write_pngs(tmp_path / "in", images)
    out = tmp_path / "projected"
    assert (
        main(
            [
                "latent",
                "project",
                str(run.path),
                str(tmp_path / "in"),
                "--out",
                str(out),
                "--steps",
                "10",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "3 images projected" in printed and "PSNR" in printed
    report = json.loads((out / "projection.json").read_text())
    assert [e["name"] for e in report["per_image"]] == ["image_0", "image_1", "image_2"]
    assert report["steps"] == 10 and report["images"] == 3
    codes = np.load(out / "codes.npy")
    assert codes.shape == (3, run.config.z_dim)
    np.testing.assert_array_equal(np.load(out / "image_1.npy"), codes[1])
    for entry in report["per_image"]:  # the written measures are those of the written images
        recon = np.asarray(Image.open(out / f"{entry['name']}.png").convert("L"), np.float64)
        original = np.asarray(Image.open(tmp_path / "in" / f"{entry['name']}.png"), np.float64)
        mse = ((recon - original) / 255).__pow__(2).mean()
        assert entry["psnr"] == pytest.approx(-10 * np.log10(mse), abs=1e-3)

    # an interpolation from a projected code starts at that code's reconstruction
    space = LatentSpace.of_run(run)
    frames = space.interpolate(str(out / "image_0.npy"), 3, steps=3)
    recon0 = np.asarray(Image.open(out / "image_0.png").convert("L"))
    np.testing.assert_array_equal(frames[0, ..., 0], recon0)
    assert (
        main(
            [
                "latent",
                "interp",
                str(run.path),
                "--from",
                str(out / "image_0.npy"),
                "--to",
                str(out / "image_2.npy"),
                "--out",
                str(tmp_path / "i.png"),
            ]
        )
        == 0
    )
    # arithmetic with a file of several codes: the group's mean is their mean
    grid, columns, code = space.arithmetic(
        [str(out / "codes.npy")], [1], [str(out / "image_2.npy")]
    )
    expected = (
        codes.mean(0)
        - space.family.sample_latent(1, generator=torch.Generator().manual_seed(1)).numpy()[0]
        + codes[2]
    )
    np.testing.assert_allclose(code[0].numpy(), expected, atol=1e-5)
    assert columns == 4  # three codes and their mean in row a


def test_a_conditional_run_draws_each_image_as_the_extractor_reads_it(runs, extractor, tmp_path):
    run = runs["cgan"]
    labels = torch.tensor([3, 8])
    images, _ = drawn(run, seed=4, n=2, labels=labels)
    write_pngs(tmp_path / "in", images)
    _, result, _ = project_files(run, tmp_path / "in", tmp_path / "a", steps=2)
    read = extractor(images)[1].argmax(1)
    assert torch.equal(result.labels, read)
    _, named, _ = project_files(run, tmp_path / "in", tmp_path / "b", steps=2, class_="8")
    assert named.labels.tolist() == [8, 8]
    entry = json.loads((tmp_path / "b" / "projection.json").read_text())["per_image"][0]
    assert entry["class"] == 8


def test_bad_code_files_are_refused_by_name(runs, tmp_path, capsys):
    run = runs["dcgan"]
    width = run.config.z_dim
    bad = {
        "wide.npy": np.zeros(width + 1, np.float32),
        "nan.npy": np.full(width, np.nan, np.float32),
    }
    for name, array in bad.items():
        np.save(tmp_path / name, array)
    np.save(tmp_path / "pickled.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    expected = {"wide.npy": "shape", "nan.npy": "finite", "pickled.npy": "not a .npy array"}
    for name, words in expected.items():
        path = str(tmp_path / name)
        assert (
            main(
                [
                    "latent",
                    "interp",
                    str(run.path),
                    "--from",
                    path,
                    "--to",
                    "1",
                    "--out",
                    str(tmp_path / "x.png"),
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--from" in err and name in err and words in err, err
    assert main(["latent", "arith", str(run.path), "--a", "1", "--b", "x.txt", "--c", "2"]) == 2
    assert "--b" in capsys.readouterr().err
    np.save(tmp_path / "two.npy", np.zeros((2, width), np.float32))
    with pytest.raises(GanforgeError, match="--to: .* holds 2 codes, not one"):
        LatentSpace.of_run(run).interpolate(1, str(tmp_path / "two.npy"), steps=3)
    assert not (tmp_path / "x.png").exists()


def test_bad_projections_are_refused_before_any_work(runs, tmp_path, tree_snapshot, capsys):
    run = runs["dcgan"]
    images, _ = drawn(run, seed=1, n=1)
    write_pngs(tmp_path / "in", images)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    before = tree_snapshot(tmp_path)
    cases = [
        (["--out", str(full)], "--out"),
        (["--steps", "-1"], "--steps"),
        (["--steps", "100001"], "--steps"),
        (["--class", "3"], "--class"),
        (["--extractor", "nope"], "--extractor"),
    ]
    for flags, word in cases:
        args = ["latent", "project", str(run.path), str(tmp_path / "in"), "--no-progress"]
        assert (
            main(args + (flags if flags[0] == "--out" else flags + ["--out", str(tmp_path / "o")]))
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and word in err, err
    assert tree_snapshot(tmp_path) == before
    options = {**TINY, "steps": 2, "model": "pix2pix", **translator_options("pix2pix")}
    translator = ganforge.train(**options, out=str(tmp_path / "p2p"))
    with pytest.raises(GanforgeError, match="translate"):
        project_files(translator, tmp_path / "in", tmp_path / "o2", steps=1)
    assert not (tmp_path / "o2").exists()

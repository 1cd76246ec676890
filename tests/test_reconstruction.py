"""VAE reconstructions: decoder(mu(x)) in eval mode, the input-over-reconstruction grid, and
`ganforge latent recon` on user images with one-line errors naming a bad file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.cli import main
from ganforge.data import to_model_range, to_uint8
from ganforge.report.grid import paired_rows
from tiny import TINY_OPTIONS

TINY = {**TINY_OPTIONS, "model": "vae", "steps": 6, "log_every": 3}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    return ganforge.train(out=str(tmp_path_factory.mktemp("recon") / "vae"), **TINY)


def test_paired_rows_put_each_row_of_inputs_over_its_reconstructions():
    inputs = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 1, 2, 2)
    outputs = inputs + 100
    grid, columns = paired_rows(inputs, outputs, columns=3)
    assert columns == 3 and grid.shape == (12, 2, 2, 1)
    assert grid[:, 0, 0, 0].tolist() == [0, 1, 2, 100, 101, 102, 3, 4, 255, 103, 104, 255]


def test_reconstruct_decodes_the_posterior_mean_in_eval_mode(vae_run, digits):
    family = vae_run.load()
    decoder = vae_run.generator(ema=False)
    images = digits.images[:5]
    out = family.reconstruct(decoder, images)
    with torch.no_grad():
        family.networks["encoder"].eval()
        mu, _ = family.networks["encoder"](to_model_range(images))
        expected = to_uint8(decoder(mu))
    assert torch.equal(out, expected) and out.dtype == torch.uint8


def test_recon_command_writes_a_grid_of_a_folder(vae_run, digits, tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        pixels = digits.images[i, 0].numpy()
        Image.fromarray(pixels).resize((56, 56)).save(folder / ("sub" if i else ".") / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "recon.png"
    assert main(["latent", "recon", str(vae_run.path), str(folder), "--out", str(out)]) == 0
    assert "3 images" in capsys.readouterr().out
    with Image.open(out) as grid:
        picture = np.asarray(grid)
    assert picture.shape[0] < picture.shape[1]  # two rows (inputs, reconstructions) of three


def test_recon_of_a_bad_image_names_the_file(vae_run, tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert main(["latent", "recon", str(vae_run.path), str(folder), "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: INPUT:") and err.count("\n") == 1
    assert "broken.png" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["latent", "recon", str(vae_run.path), str(empty), "--out", "x.png"]) == 2
    assert "holds no images" in capsys.readouterr().err
    assert main(["latent", "recon", str(vae_run.path), str(folder), "--out", "x.npz"]) == 2
    assert "--out" in capsys.readouterr().err

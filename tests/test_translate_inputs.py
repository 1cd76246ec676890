"""`ganforge translate` never writes over one of its inputs, however --out names its folder."""

from __future__ import annotations

import os

import pytest
from PIL import Image

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.translate import translate_files

PIX2PIX = {
    "model": "pix2pix",
    "data": "mnist-mini-edges",
    "resolution": 32,
    "width": 4,
    "batch_size": 8,
    "steps": 2,
    "n_grid": 4,
    "progress": False,
}


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory) -> ganforge.Run:
    return ganforge.train(**PIX2PIX, out=str(tmp_path_factory.mktemp("pix2pix") / "run"))


@pytest.fixture
def photo(tmp_path):
    edges = load_dataset("mnist-mini-edges", split="test")
    path = tmp_path / "photos" / "photo.png"
    path.parent.mkdir()
    Image.fromarray(edges.sources[0, 0].numpy()).save(path)
    return path


def test_out_as_the_inputs_own_folder_is_refused(pix2pix_run, photo, capsys):
    before = photo.read_bytes()
    with pytest.raises(GanforgeError, match="^--out: ") as info:
        translate_files(pix2pix_run, photo, photo.parent)
    assert str(photo) in str(info.value) and "overwrite" in str(info.value)
    assert main(["translate", str(pix2pix_run.path), str(photo), "--out", str(photo.parent)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(photo) in error
    assert photo.read_bytes() == before


def test_an_output_that_is_a_link_to_an_input_is_refused(pix2pix_run, photo, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.link(photo, out / "photo.png")  # the same file under the output's name
    before = photo.read_bytes()
    with pytest.raises(GanforgeError, match="would overwrite the input"):
        translate_files(pix2pix_run, photo, out)
    assert photo.read_bytes() == before


def test_a_folder_translated_into_a_folder_beside_it_still_works(pix2pix_run, photo, tmp_path):
    written = translate_files(pix2pix_run, photo.parent, tmp_path / "out")
    assert [p.name for p in written] == ["photo.png"]

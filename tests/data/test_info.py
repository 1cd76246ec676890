"""`ganforge data info`: count, shape, classes, skipped files, and a grid of real images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_info_on_a_named_dataset(data_root, write_mnist, tmp_path, capsys):
    write_mnist(tmp_path / "elsewhere" / "mnist", n=50)
    args = ["data", "info", "mnist", "--data-root", str(tmp_path / "elsewhere")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "images    50, uint8, 1 x 28 x 28" in out
    assert "classes   10: 0 (5), 1 (5)" in out
    assert str(tmp_path / "elsewhere" / "mnist") in out
    assert "skipped   0 files" in out
    assert "grid" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]  # nothing written unasked
    grid = tmp_path / "digits.png"
    assert main([*args, "--out", grid.name]) == 0
    assert f"grid      {grid.name} (50 images)" in capsys.readouterr().out
    with Image.open(grid) as image:
        assert image.size[0] > 28 * 7  # a grid of 8 columns of enlarged digits


def test_info_on_a_folder_names_the_skipped_files(tmp_path, capsys):
    folder = tmp_path / "pics"
    (folder / "cats").mkdir(parents=True)
    (folder / "dogs").mkdir()
    for i in range(3):
        Image.new("RGB", (40, 30), (200, i * 50, 0)).save(folder / "cats" / f"{i}.jpg")
    Image.new("RGB", (40, 30), (0, 0, 200)).save(folder / "dogs" / "d.webp")
    (folder / "dogs" / "broken.png").write_bytes(b"no")
    (folder / "readme.md").write_text("# pets")
    out_file = tmp_path / "grid.png"
    args = ["data", "info", str(folder), "--resolution", "16", "--out", str(out_file), "--n", "3"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "images    4, uint8, 3 x 16 x 16" in captured.out
    assert "classes   2: cats (3), dogs (1)" in captured.out
    assert "skipped   2 files" in captured.out
    assert f"  {folder / 'dogs' / 'broken.png'}: " in captured.out
    assert f"  {folder / 'readme.md'}: not an image file" in captured.out
    assert "UserWarning" not in captured.err
    assert out_file.is_file()


def test_info_on_paired_folders(tmp_path, capsys):
    for side, value in (("A", 30), ("B", 220)):
        (tmp_path / "pairs" / side).mkdir(parents=True)
        for i in range(2):
            pixels = np.full((20, 20), value + i, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pairs" / side / f"{i}.png")
    args = ["data", "info", str(tmp_path / "pairs"), "--paired", "--channels", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "pairs     2 in" in out and "(folders)" in out
    assert "A and B: uint8, 1 x 64 x 64" in out
    assert "grid" not in out and sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]
    assert main([*args, "--out", "pairs.png"]) == 0
    assert "grid      pairs.png (2 pairs, A left of B)" in capsys.readouterr().out
    assert (tmp_path / "pairs.png").is_file()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["data", "info", "cifar10"], ["cifar-10-binary.tar.gz", "GANFORGE_OFFLINE"]),
        (["data", "info", "digits", "--n", "0"], ["--n"]),
        (["data", "info", "no-such-thing"], ["--data", "unknown dataset"]),
    ],
)
def test_info_errors_are_one_line(capsys, args, words):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: ") and err.count("\n") == 1
    for word in words:
        assert word in err


def test_info_on_point_data_says_points_and_modes(tmp_path, capsys):
    assert main(["data", "info", "ring8", "--out", str(tmp_path / "ring.png"), "--n", "500"]) == 0
    report = capsys.readouterr().out
    assert "points    50000, float32, 2-D" in report and "8 Gaussians, std 0.01" in report
    with Image.open(tmp_path / "ring.png") as picture:
        assert picture.mode == "RGB" and min(picture.size) > 200
    assert main(["data", "info", "moons"]) == 0
    assert "none (a shape" in capsys.readouterr().out
    assert main(["data", "info", "ring8", "--resolution", "32"]) == 2
    assert "--resolution" in capsys.readouterr().err


def test_datasets_lists_point_data_for_mlp(capsys):
    assert main(["datasets"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "ring8 (points, for mlp)" in listed and "grid25 (points, for mlp)" in listed
    assert "mnist-mini-edges-unpaired (two sets, for cyclegan)" in listed

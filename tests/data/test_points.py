"""Point data: the 2-D toy distributions (shapes, modes, balance, seeds, splits) and the CSV
reader (good files, and one clear line for each kind of bad file)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import points as points_module
from ganforge.data.points import (
    POINT_DATASETS,
    PointSet,
    circles,
    grid25,
    is_point_data,
    load_point_csv,
    load_point_dataset,
    moons,
    ring8,
    spiral,
)
from ganforge.errors import GanforgeError

S = math.sqrt(0.5)
RING_CENTRES = [(1, 0), (S, S), (0, 1), (-S, S), (-1, 0), (-S, -S), (0, -1), (S, -S)]
GRID_CENTRES = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
NUM_LABELS = {"ring8": 8, "grid25": 25, "spiral": 2, "moons": 2, "circles": 2}


@pytest.mark.parametrize("name", sorted(POINT_DATASETS))
def test_generator_shapes_and_labels(name):
    data = POINT_DATASETS[name](1000, 3)
    assert isinstance(data, PointSet) and data.name == name
    assert data.points.shape == (1000, 2) and data.points.dtype == torch.float32
    assert data.labels.shape == (1000,) and data.labels.dtype == torch.int64
    assert set(data.labels.tolist()) == set(range(NUM_LABELS[name]))
    assert torch.isfinite(data.points).all()
    assert data.location == ""


@pytest.mark.parametrize("generator", [spiral, moons, circles])
def test_shapes_have_no_modes(generator):
    data = generator(500, 0)
    assert data.modes is None and data.mode_std == 0.0
    assert set(data.labels.tolist()) == {0, 1}


def test_ring8_centres_and_spread():
    data = load_point_dataset("ring8")
    assert data.mode_std == 0.01
    assert torch.allclose(data.modes, torch.tensor(RING_CENTRES, dtype=torch.float32))
    radius = data.points.norm(dim=1)
    assert ((radius - 1).abs() <= 5 * 0.01).all()
    for k, centre in enumerate(RING_CENTRES):
        mean = data.points[data.labels == k].double().mean(dim=0)
        assert (mean - torch.tensor(centre, dtype=torch.float64)).norm() < 0.01
        # the spread around a centre is the mixture's std (0.01 in each coordinate)
        spread = data.points[data.labels == k].double().std(dim=0)
        assert torch.allclose(spread, torch.full((2,), 0.01, dtype=torch.float64), rtol=0.05)


def test_grid25_centres_are_the_product_grid():
    data = grid25(5000, 0)
    assert data.mode_std == 0.05
    centres = {tuple(int(v) for v in row) for row in data.modes.tolist()}
    assert len(data.modes) == 25 and centres == GRID_CENTRES
    assert torch.equal(data.modes, data.modes.round())  # exactly on the grid
    offsets = data.points - data.modes[data.labels]
    assert (offsets.norm(dim=1) <= 5 * 0.05 * math.sqrt(2)).all()


@pytest.mark.parametrize("name", sorted(POINT_DATASETS))
def test_components_are_balanced(name):
    data = load_point_dataset(name)
    assert len(data) == 50_000
    counts = torch.bincount(data.labels, minlength=NUM_LABELS[name])
    fair = 50_000 / NUM_LABELS[name]
    assert ((counts >= 0.8 * fair) & (counts <= 1.2 * fair)).all(), counts.tolist()


@pytest.mark.parametrize("name", sorted(POINT_DATASETS))
def test_train_and_test_splits_differ_but_match_in_distribution(name):
    train, test = load_point_dataset(name, "train"), load_point_dataset(name, "test")
    assert not torch.equal(train.points, test.points)
    assert torch.allclose(train.points.mean(dim=0), test.points.mean(dim=0), atol=0.03)
    assert torch.allclose(train.points.std(dim=0), test.points.std(dim=0), rtol=0.03)
    train_share = torch.bincount(train.labels) / len(train)
    test_share = torch.bincount(test.labels) / len(test)
    assert torch.allclose(train_share, test_share, atol=0.01)


@pytest.mark.parametrize("name", sorted(POINT_DATASETS))
def test_same_seed_same_points(name):
    first, again, other = (POINT_DATASETS[name](300, seed) for seed in (7, 7, 8))
    assert torch.equal(first.points, again.points) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.points, other.points)


def test_circles_radii():
    data = circles(20_000, 0)
    radius = data.points.norm(dim=1)
    assert abs(radius[data.labels == 0].mean().item() - 1.0) < 0.01
    assert abs(radius[data.labels == 1].mean().item() - 0.5) < 0.01


def test_moons_halves():
    data = moons(20_000, 0)
    upper, lower = data.points[data.labels == 0], data.points[data.labels == 1]
    # upper: the half circle of radius 1 at the origin; lower: centred at (1, 0.5), y <= 0.5
    assert abs(upper.norm(dim=1).mean().item() - 1.0) < 0.01
    assert abs((lower - torch.tensor([1.0, 0.5])).norm(dim=1).mean().item() - 1.0) < 0.01
    assert upper[:, 1].mean() > 0.5 and lower[:, 1].mean() < 0.0


def test_spiral_arms_are_opposite():
    data = spiral(20_000, 0)
    radius = data.points.norm(dim=1)
    assert radius.max() < 2.6 and radius.mean() > 0.8
    # arm 1 is arm 0 turned by half a turn: its mirror image has the same mean
    arm0, arm1 = data.points[data.labels == 0], data.points[data.labels == 1]
    assert torch.allclose(arm0.mean(dim=0), -arm1.mean(dim=0), atol=0.05)
    assert (arm0.mean(dim=0) - arm1.mean(dim=0)).norm() > 0.2


def test_unknown_split_and_name():
    with pytest.raises(GanforgeError, match="split 'validation'"):
        load_point_dataset("ring8", "validation")
    with pytest.raises(GanforgeError, match="'ring9'.*ring8"):
        load_point_dataset("ring9")


def test_point_set_reads_like_an_image_dataset():
    data = ring8(10, 0)
    assert len(data) == 10 and data.dims == 2
    assert data.images is data.points
    assert data.sources is None and data.class_names == [] and data.num_classes == 0
    assert data.to_shape(None, None) is data


def test_point_set_refuses_an_image_shape():
    data = ring8(10, 0)
    with pytest.raises(GanforgeError, match="ring8") as caught:
        data.to_shape(32, None)
    assert str(caught.value).startswith("--resolution:") and "--channels" not in str(caught.value)
    with pytest.raises(GanforgeError, match="^--channels: "):
        data.to_shape(None, 3)
    with pytest.raises(GanforgeError, match="^--resolution/--channels: "):
        data.to_shape(64, 1)


# --- CSV files ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str | bytes, name: str = "points.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_header(tmp_path):
    path = write(tmp_path, "x,y\n0.5,1\n-2,3.25\n\n   \n4e0, 5 \n")
    data = load_point_csv(path)
    assert data.points.dtype == torch.float32 and data.labels.dtype == torch.int64
    assert data.points.tolist() == [[0.5, 1.0], [-2.0, 3.25], [4.0, 5.0]]
    assert data.labels.tolist() == [-1, -1, -1]
    assert data.name == str(path) and data.location == str(path.resolve())
    assert data.modes is None and data.dims == 2


def test_csv_without_header_crlf_and_bom(tmp_path):
    path = write(tmp_path, "\ufeff1,2\r\n3,-4\r\n")
    assert load_point_csv(str(path)).points.tolist() == [[1.0, 2.0], [3.0, -4.0]]


def test_csv_with_labels(tmp_path):
    path = write(tmp_path, "x,y,mode\n0,0,1\n1,1,0\n2,2,-1\n")
    data = load_point_csv(path)
    assert data.points.tolist() == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
    assert data.labels.tolist() == [1, 0, -1]


def bad_file(path, *fragments):
    """The one-line error for `path` names the file and every fragment."""
    with pytest.raises(GanforgeError) as caught:
        load_point_csv(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_csv_not_found(tmp_path):
    bad_file(tmp_path / "nowhere.csv", "not found")


def test_csv_folder(tmp_path):
    folder = tmp_path / "points.csv"
    folder.mkdir()
    bad_file(folder, "is a folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_csv_pipe(tmp_path):
    pipe = tmp_path / "points.csv"
    os.mkfifo(pipe)  # reading it would block until a writer comes, and never end
    bad_file(pipe, "not a regular file")


@pytest.mark.parametrize("text", ["", "\n  \n\n", "x,y\n\n"])
def test_csv_without_rows(tmp_path, text):
    bad_file(write(tmp_path, text), "holds no points")


def test_csv_too_few_points(tmp_path):
    bad_file(write(tmp_path, "x,y\n1,2\n"), "1 point", "at least 2")


def test_csv_wrong_number_of_columns(tmp_path):
    bad_file(write(tmp_path, "a,b,c,d\n\n1,2,3,4\n5,6,7,8\n"), "line 3", "4 numbers")
    bad_file(write(tmp_path, "1\n2\n"), "line 1", "1 numbers")


def test_csv_row_wider_than_the_first(tmp_path):
    bad_file(write(tmp_path, "x,y\n1,2\n\n3,4,5\n"), "line 4", "3 columns", "first row has 2")


def test_csv_not_a_number(tmp_path):
    bad_file(write(tmp_path, "x,y\n1,2\n\n3,abc\n"), "line 4", "'abc' is not a number")
    bad_file(write(tmp_path, "1,2\n3,\n"), "line 2", "'' is not a number")
    bad_file(write(tmp_path, "1,2\n1_000,2\n"), "line 2", "'1_000'")
    # a first row with any number in it is data, not a header
    bad_file(write(tmp_path, "1,abc\n2,3\n"), "line 1", "'abc' is not a number")


def test_csv_space_separated(tmp_path):
    bad_file(write(tmp_path, "1,2\n3 4\n"), "line 2", "'3 4'", "separated by commas")


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e39"])  # 1e39: past float32
def test_csv_non_finite(tmp_path, value):
    bad_file(write(tmp_path, f"x,y\n1,2\n3,{value}\n"), "line 3", "not a finite number")


def test_csv_label_not_a_whole_number(tmp_path):
    bad_file(write(tmp_path, "0,0,1\n\n1,1,0.5\n"), "line 3", "label")
    bad_file(write(tmp_path, "0,0,-2\n1,1,0\n"), "line 1", "label")


def test_csv_not_utf8(tmp_path):
    bad_file(write(tmp_path, b"1,2\n\xff\xfe,3\n"), "UTF-8")


def test_csv_larger_than_the_bound_is_refused(tmp_path, monkeypatch):
    path = write(tmp_path, "1,2\n3,4\n5,6\n")  # 12 bytes
    monkeypatch.setattr(points_module, "MAX_POINT_FILE_BYTES", 11)
    bad_file(path, "12 bytes", "at most 11 bytes")
    monkeypatch.setattr(points_module, "MAX_POINT_FILE_BYTES", 12)
    assert len(load_point_csv(path)) == 3


def test_csv_more_rows_than_the_bound_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(points_module, "MAX_POINTS", 3)
    assert len(load_point_csv(write(tmp_path, "1,2\n3,4\n5,6\n", "three.csv"))) == 3
    bad_file(write(tmp_path, "1,2\n3,4\n5,6\n7,8\n", "four.csv"), "more than 3 points")


def test_csv_round_trip_of_generated_points(tmp_path):
    data = ring8(200, 1)
    table = np.column_stack([data.points.numpy(), data.labels.numpy()])
    path = tmp_path / "ring.csv"
    np.savetxt(path, table, delimiter=",", fmt=["%.9g", "%.9g", "%d"], header="x,y,label")
    read = load_point_csv(path)  # np.savetxt's header starts with '# ': a header row too
    assert torch.equal(read.points, data.points) and torch.equal(read.labels, data.labels)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ring8", True),
        ("circles", True),
        ("data/points.csv", True),
        ("MISSING.CSV", True),
        ("mnist", False),
        ("ring8.txt", False),
        ("csv", False),
        ("points.csv.gz", False),
    ],
)
def test_is_point_data(name, expected):
    assert is_point_data(name) is expected

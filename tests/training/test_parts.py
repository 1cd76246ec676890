"""Small training parts: weight average, logbook, optimiser choice, devices, atomic files."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from ganforge import GanforgeError, TrainConfig
from ganforge.atomic import atomic_folder, atomic_path, atomic_write_text
from ganforge.models import describe_model
from ganforge.run import torch_device
from ganforge.training.ema import WeightAverage
from ganforge.training.logbook import WALL_CLOCK_FIELDS, Logbook, parse_record, truncate_records
from ganforge.training.optim import learning_rate

# ---- EMA --------------------------------------------------------------------------------


def test_weight_average_is_a_frozen_copy():
    network = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    average = WeightAverage(network, decay=0.9)
    assert average.network is not network
    assert not average.network.training
    assert not any(p.requires_grad for p in average.network.parameters())
    for a, b in zip(average.network.parameters(), network.parameters(), strict=True):
        assert torch.equal(a, b)


def test_weight_average_update_rule():
    network = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        network.weight.fill_(0.0)
    average = WeightAverage(network, decay=0.99)
    with torch.no_grad():
        network.weight.fill_(1.0)
    average.update(network, step=0)
    beta = min(0.99, 1 / 10)  # the warm-up makes early averages follow the weights closely
    assert average.network.weight.item() == pytest.approx(1 - beta)
    for step in range(1, 2000):
        average.update(network, step)
    assert average.network.weight.item() == pytest.approx(1.0, abs=1e-6)


def test_weight_average_copies_buffers():
    network = nn.BatchNorm1d(3)
    average = WeightAverage(network, decay=0.5)
    network.train()
    network(torch.randn(8, 3) + 5)
    average.update(network, step=100)
    assert torch.equal(average.network.running_mean, network.running_mean)


# ---- logbook ----------------------------------------------------------------------------


def test_logbook_writes_interval_means(tmp_path):
    path = tmp_path / "metrics.jsonl"
    book = Logbook(path)
    for value in (1.0, 2.0, 3.0):
        book.add({"loss": torch.tensor(value)})
    book.count_images(30)
    record = book.flush(3, {"grad": torch.tensor(0.5)})
    assert record["step"] == 3 and record["loss"] == pytest.approx(2.0) and record["grad"] == 0.5
    assert set(WALL_CLOCK_FIELDS) <= set(record)
    book.add({"loss": torch.tensor(10.0)})
    second = book.flush(4, {})
    assert second["loss"] == pytest.approx(10.0)  # the interval restarted
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [record, second]


def test_truncate_records(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "x": s}) + "\n" for s in (5, 10, 15, 20)))
    truncate_records(path, 12)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [5, 10]
    truncate_records(path, 100)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [5, 10]
    truncate_records(tmp_path / "absent.jsonl", 3)  # nothing to do
    assert not (tmp_path / "absent.jsonl").exists()


# ---- optimiser and device choice --------------------------------------------------------------


def test_learning_rate_per_network():
    """The family names each network's option; a network it does not name learns at --lr-d."""
    config = TrainConfig(model="mlp", lr_g=1e-3, lr_d=4e-4, resolution=8, channels=1)
    family = describe_model(config)
    assert learning_rate(config, family, "generator") == 1e-3
    assert learning_rate(config, family, "discriminator") == 4e-4
    assert learning_rate(config, family, "critic_of_a_plugin") == 4e-4


def test_torch_device():
    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(GanforgeError, match="^--device: 'toaster'"):
        torch_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(GanforgeError, match="^--device: CUDA"):
            torch_device("cuda:0")


# ---- atomic files -----------------------------------------------------------------------


def test_atomic_write_replaces_whole_files(tmp_path):
    path = tmp_path / "deep" / "file.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]


def test_atomic_path_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.parent == path.parent and tmp != path
            tmp.write_text("new but unfinished")
            raise RuntimeError("crash")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


@pytest.mark.parametrize("empty_out_first", [False, True])
def test_atomic_folder_appears_whole_or_not_at_all(tmp_path, empty_out_first):
    out = tmp_path / "out"
    if empty_out_first:
        out.mkdir()
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as partial:
            (partial / "half.txt").write_text("unfinished")
            assert not (out / "half.txt").exists()  # nothing shows before the end
            raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if empty_out_first else [])
    assert not empty_out_first or not any(out.iterdir())
    with atomic_folder(out) as partial:
        (partial / "a.txt").write_text("a")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (out / "a.txt").read_text() == "a"


def test_truncate_records_drops_garbled_lines_and_keeps_the_good_ones_byte_for_byte(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [json.dumps({"step": s, "x": s / 3}).encode() for s in (2, 4, 6)]
    garbled = b'\xff{"step": 3}'  # a byte that is not UTF-8: a disk error, not a torn write
    path.write_bytes(good[0] + b"\n" + garbled + b"\n" + good[1] + b"\n" + good[2] + b"\n")
    truncate_records(path, 4)
    assert path.read_bytes() == good[0] + b"\n" + good[1] + b"\n"


def test_truncate_records_ends_the_file_with_a_newline(tmp_path):
    """A record appended after a last line without its newline would be glued to it, lost."""
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 2}\n{"step": 4}')
    truncate_records(path, 4)
    assert path.read_bytes() == b'{"step": 2}\n{"step": 4}\n'


@pytest.mark.parametrize(
    "line",
    [
        b'\xff{"step": 2}',
        b'{"step": true}',
        b'{"step": -1}',
        b'{"step": 2.0}',
        b'{"step": 1e400}',
        b'{"step": ' + b"9" * 5000 + b"}",
        b"[" * 100_000,
        b"[]",
        b"",
    ],
)
def test_parse_record_refuses_what_is_not_a_record(line):
    assert parse_record(line) is None


def test_a_record_read_back_keeps_its_values():
    assert parse_record(b'{"step": 2, "loss_d": 0.5}') == {"step": 2, "loss_d": 0.5}
    assert parse_record('{"step": 2}') == {"step": 2}

"""`ganforge bench` (training/bench.py): the real training step of a config, timed, with
where the time goes; it keeps nothing."""

from __future__ import annotations

import re
import tempfile

import pytest

from ganforge.cli import main
from ganforge.training.clock import SectionClock

TINY = ["--model", "mlp", "--data", "digits", "--width", "8", "--z-dim", "8", "--batch-size", "16"]


def test_bench_prints_images_per_second_and_where_time_goes(tmp_path, monkeypatch, capsys):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(tmp_path)
    assert main(["bench", *TINY, "--steps", "3", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\d+ img/s \(.* ms per iteration, 3 iterations", out, re.MULTILINE), out
    for section in ("data", "discriminator step", "generator step", "diagnostics", "other"):
        assert re.search(rf"^  {section} +\d+\.\d+ ms +\d+\.\d%$", out, re.MULTILINE), section
    assert "mlp on digits" in out and "batch 16" in out
    assert not list(scratch.glob("ganforge-bench-*"))  # the temporary run folder is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # and nothing else was made


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--ddp"], "--ddp: bench times one process"), (["--out", "x"], "--out: bench trains")],
)
def test_bench_refuses_what_it_cannot_time(flags, message, capsys):
    assert main(["bench", *TINY, *flags]) == 2
    assert message in capsys.readouterr().err


def test_nested_sections_count_for_themselves_only(monkeypatch):
    now = iter([0.0, 1.0, 3.0, 10.0])  # outer starts, inner starts, inner ends, outer ends
    monkeypatch.setattr("ganforge.training.clock.time.perf_counter", lambda: next(now))
    clock = SectionClock()
    with clock.section("generator"):
        with clock.section("diagnostics"):
            pass
    assert dict(clock.seconds) == {"diagnostics": 2.0, "generator": 8.0}


def test_an_accumulated_iteration_counts_every_batch_it_moves():
    """With --accumulate 3 each update is of 3 batches: an iteration moves 3x the images
    (bench once counted one batch of them)."""
    from ganforge.training.bench import bench

    options = {"model": "mlp", "data": "digits", "width": 8, "z_dim": 8, "batch_size": 16}
    result = bench({**options, "steps": 2, "accumulate": 3}, warmup=1)
    assert result.images_per_iteration == 48
    assert "batch 16 x 3 accumulated" in result.setting
    assert result.images_per_second == 2 * 48 / result.seconds

"""A full disk, a read-only folder, a Ctrl-C outside the training loop: every command stops
with one line naming the file (or "interrupted"), never a traceback, and leaves what was on
disk as it was. The faults are injected (tests run as root, for whom chmod does not bite):
every open for writing under one folder fails with the given errno."""

from __future__ import annotations

import builtins
import errno
import json
import os
from pathlib import Path

import pytest

import ganforge
from cli_errors import assert_one_line_error
from ganforge.cli import main
from tiny import tiny_flags

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@pytest.fixture
def failing_writes(monkeypatch):
    """`failing_writes(folder, errno.ENOSPC)`: from now on, opening any file under `folder`
    for writing raises OSError(errno) naming the file (reading still works)."""

    def install(folder: Path, code: int) -> None:
        folder = Path(folder).resolve()
        real_open, real_os_open = builtins.open, os.open

        def under(path) -> bool:
            try:
                return Path(os.fsdecode(path)).resolve().is_relative_to(folder)
            except (TypeError, ValueError):  # a file descriptor
                return False

        def fail(path):
            raise OSError(code, os.strerror(code), os.fsdecode(path))

        def guarded_open(file, mode="r", *args, **kwargs):
            if under(file) and any(c in mode for c in "wax+"):
                fail(file)
            return real_open(file, mode, *args, **kwargs)

        def guarded_os_open(path, flags, *args, **kwargs):
            if under(path) and flags & WRITE_FLAGS:
                fail(path)
            return real_os_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)

    return install


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def finished(tmp_path) -> Path:
    out = tmp_path / "run"
    assert main(tiny_flags(out, steps=4)) == 0
    return out


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_new_run_on_a_full_or_read_only_disk(tmp_path, failing_writes, capsys, code):
    failing_writes(tmp_path / "new", code)
    assert main(tiny_flags(tmp_path / "new", steps=4)) == 2
    assert_one_line_error(capsys, os.strerror(code), str(tmp_path / "new"))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_resume_on_a_full_or_read_only_disk_keeps_the_run(finished, failing_writes, capsys, code):
    before = files_under(finished)
    capsys.readouterr()
    failing_writes(finished, code)
    assert main(["train", "--resume", str(finished), "--steps", "8", "--no-progress"]) == 2
    assert_one_line_error(capsys, os.strerror(code))
    assert files_under(finished) == before
    assert ganforge.load_run(finished).step == 4  # still loads, still resumable


def test_sample_into_a_read_only_folder(finished, tmp_path, failing_writes, capsys):
    failing_writes(tmp_path / "grids", errno.EROFS)
    out = tmp_path / "grids" / "grid.png"
    capsys.readouterr()
    assert main(["sample", str(finished), "--n", "4", "--out", str(out)]) == 2
    assert_one_line_error(capsys, f"'{out}': Read-only file system")  # the file, not a temporary
    assert not out.exists()


def test_report_of_a_read_only_run(finished, failing_writes, capsys):
    before = files_under(finished)
    capsys.readouterr()
    failing_writes(finished, errno.EROFS)
    assert main(["report", str(finished)]) == 2
    assert_one_line_error(capsys, "Read-only file system", str(finished))
    assert files_under(finished) == before


def test_eval_of_a_read_only_run_prints_its_numbers_before_it_fails(
    finished, failing_writes, capsys
):
    capsys.readouterr()
    failing_writes(finished, errno.EROFS)
    assert main(["eval", str(finished), "--n", "64", "--metrics", "fid", "--no-progress"]) == 2
    out = capsys.readouterr()
    assert "fid" in out.out.lower()  # the table, computed at a cost, reached the user
    assert out.err.startswith(f"ganforge: error: '{finished / 'eval.json'}': Read-only")
    assert out.err.count("\n") == 1 and "Traceback" not in out.err
    assert not (finished / "eval.json").exists()


def test_ctrl_c_during_start_up_is_one_line_and_leaves_no_run(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ganforge.training.setup.open_dataset", interrupted)
    assert main(tiny_flags(tmp_path / "r", steps=4)) == 130
    err = capsys.readouterr().err
    assert err == "ganforge: interrupted\n"


def test_ctrl_c_during_eval_writes_nothing(finished, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ganforge.evaluate.measure_generator", interrupted)
    capsys.readouterr()
    assert main(["eval", str(finished), "--n", "64", "--metrics", "fid", "--no-progress"]) == 130
    assert capsys.readouterr().err == "ganforge: interrupted\n"
    assert not (finished / "eval.json").exists()
    assert json.loads((finished / "config.json").read_text())["steps"] == 4


def test_a_requested_stop_is_not_worded_as_an_error(tmp_path, monkeypatch, capsys):
    from ganforge.training.loop import Trainer

    original, calls = Trainer._iteration, {"n": 0}

    def interrupted(self, log_now):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C between iterations 2 and 3
        return original(self, log_now)

    monkeypatch.setattr(Trainer, "_iteration", interrupted)
    out = tmp_path / "r"
    assert main(tiny_flags(out, steps=6)) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("ganforge: stopped at step 2 as asked; checkpoint, curves and")
    assert "error" not in err and f"ganforge train --resume {out}" in err
    assert (out / "samples" / "final.png").is_file() and (out / "loss_curves.png").is_file()

"""Runs that survive: SIGKILL at injected faults (mid-step, around a checkpoint's rename, mid-line
of metrics.jsonl), then --resume, gives the uninterrupted run's weights bit for bit; SIGTERM
stops cleanly with a checkpoint; torn metrics lines are dropped."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge import GanforgeError
from ganforge.models.gan import GANFamily

KILL_OPTIONS = {"steps": 240, "checkpoint_every": 7, "log_every": 5, "sample_every": 50}


def _flags(options: dict) -> list[str]:
    return [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]


def _same_final_weights(a: ganforge.Run, b: ganforge.Run) -> bool:
    ta, tb = load_file(str(a.checkpoints[-1][1])), load_file(str(b.checkpoints[-1][1]))
    return set(ta) == set(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)


# The child runs `ganforge train` with one fault injected: it SIGKILLs itself at a moment
# fixed by (where, count), so each case dies at the same place on every machine, however fast.
FAULT_INJECTOR = """
import os, signal, sys
from ganforge.cli import main

where, count = sys.argv[1], int(sys.argv[2])
calls = [0]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


if where == "generator-phase":  # after D's update of an iteration, before G's
    from ganforge.models.gan import GANFamily

    phase_loss = GANFamily.phase_loss

    def wrapped(self, phase, batch):
        if phase == "generator":
            calls[0] += 1
            if calls[0] == count:
                die()
        return phase_loss(self, phase, batch)

    GANFamily.phase_loss = wrapped
elif where in ("checkpoint-written", "checkpoint-renamed"):  # around the rename of a checkpoint
    replace = os.replace

    def wrapped(source, target, *args, **kwargs):
        checkpoint = str(target).endswith(".safetensors")
        calls[0] += checkpoint
        if checkpoint and calls[0] == count and where == "checkpoint-written":
            die()
        replace(source, target, *args, **kwargs)
        if checkpoint and calls[0] == count and where == "checkpoint-renamed":
            die()

    os.replace = wrapped
elif where == "metrics-line":  # half of a metrics.jsonl record on disk
    from ganforge.training.logbook import Logbook

    flush = Logbook.flush

    def wrapped(self, step, extra, partial=False):
        calls[0] += 1
        if calls[0] != count:
            return flush(self, step, extra, partial)
        path, self.path = self.path, None
        line = repr(flush(self, step, extra, partial))
        with path.open("a") as handle:
            handle.write(line[: len(line) // 2])
        die()

    Logbook.flush = wrapped
else:
    raise SystemExit(f"unknown fault {where}")
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "where, count",
    [
        ("generator-phase", 101),  # mid-iteration, 3 steps after the checkpoint of step 98
        ("checkpoint-written", 9),  # step 63's file complete, not yet renamed
        ("checkpoint-renamed", 20),  # step 140's checkpoint on disk, nothing after it
        ("metrics-line", 31),  # step 155's record torn in half
    ],
)
def test_sigkill_at_an_injected_fault_then_resume_is_bit_identical(
    tiny_options, tmp_path, without_wall_clock, where, count
):
    options = {**tiny_options, **KILL_OPTIONS}
    options.pop("progress")
    straight = ganforge.train(**options, progress=False, out=str(tmp_path / "straight"))

    killed = tmp_path / "killed"
    injector = tmp_path / "inject_fault.py"
    injector.write_text(FAULT_INJECTOR)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANFORGE_TEST_THREADS": "1"}
    command = [sys.executable, str(injector), where, str(count), "train", "--no-progress"]
    command += ["--out", str(killed), *_flags(options)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    reached = ganforge.load_run(killed).checkpoints[-1][0]
    assert 0 < reached < options["steps"]
    if where == "checkpoint-written":
        assert list((killed / "checkpoints").glob(".*.tmp"))  # the fault left its temporary

    assert (killed / "train.lock").is_file()  # a killed writer leaves its lock behind
    with pytest.warns(UserWarning, match=f"taking over the lock of process {process.pid}"):
        resumed = ganforge.train(resume=killed, progress=False)
    assert resumed.step == options["steps"]
    assert _same_final_weights(straight, resumed)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())
    assert not list((killed / "checkpoints").glob(".*.tmp"))
    assert not (killed / "train.lock").exists()


def test_sigterm_finishes_the_step_and_checkpoints(tiny_train, during_generator_phase):
    straight = tiny_train("straight", steps=8, log_every=2)
    with (
        during_generator_phase(3, signal.SIGTERM),
        pytest.raises(GanforgeError, match="stopped at step 3 as asked; checkpoint"),
    ):
        tiny_train("stopped", steps=8, log_every=2)
    resumed = ganforge.train(resume=straight.path.parent / "stopped")
    assert _same_final_weights(straight, resumed)
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)  # handler restored


def test_a_torn_metrics_line_is_dropped_on_resume(tiny_train, without_wall_clock):
    straight = tiny_train("straight", steps=6, log_every=2, checkpoint_every=2)
    run = tiny_train("torn", steps=4, log_every=2, checkpoint_every=2)
    with (run.path / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 6, "loss_d": 0.')  # a crash in the middle of a write
    assert [r["step"] for r in ganforge.load_run(run.path).metrics()] == [2, 4]
    resumed = ganforge.train(resume=run.path, steps=6)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


def test_a_full_disk_keeps_the_previous_checkpoint(tiny_train, monkeypatch, tmp_path):
    run = tiny_train("full", steps=4, checkpoint_every=2, keep_checkpoints=1)
    before = {p.name: p.read_bytes() for p in (run.path / "checkpoints").iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("ganforge.training.checkpoint.save_file", disk_full)
    with pytest.raises(GanforgeError, match="No space left on device.*previous checkpoints"):
        ganforge.train(resume=run.path, steps=6)
    after = {p.name: p.read_bytes() for p in (run.path / "checkpoints").iterdir()}
    assert after == before  # nothing pruned, nothing half-written, no temporary left


def test_checkpoint_minutes_saves_between_step_checkpoints(tiny_train, monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr("ganforge.training.loop.time.monotonic", lambda: clock["now"])
    original = GANFamily.phase_loss

    def slow_phase(self, phase, batch):
        clock["now"] += 20.0  # each phase "takes" 20 s: one iteration is 40 s
        return original(self, phase, batch)

    monkeypatch.setattr(GANFamily, "phase_loss", slow_phase)
    run = tiny_train(steps=6, checkpoint_every=100, checkpoint_minutes=1.0, keep_checkpoints=10)
    assert [step for step, _ in run.checkpoints] == [2, 4, 6]


def test_a_metrics_line_garbled_on_disk_is_dropped_and_the_others_kept(tiny_train, tree_snapshot):
    run = tiny_train("garbled", steps=6, log_every=2, checkpoint_every=2)
    path = run.path / "metrics.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"\xff" + lines[0][1:] + b"".join(lines[1:]))  # step 2's record is damaged
    assert [r["step"] for r in ganforge.load_run(run.path).metrics()] == [4, 6]
    resumed = ganforge.train(resume=run.path, steps=8)
    assert [r["step"] for r in resumed.metrics()] == [4, 6, 8]
    assert path.read_bytes().startswith(b"".join(lines[1:]))  # the good records, untouched


@pytest.mark.parametrize("config", [b"[]", b"\xff{}", b'{"lr_g": Infinity}'])
def test_a_damaged_config_json_is_a_clear_error_and_nothing_is_touched(
    tiny_train, tree_snapshot, config
):
    run = tiny_train("damaged", steps=2)
    (run.path / "config.json").write_bytes(config)
    before = tree_snapshot(run.path)
    for call in (lambda: ganforge.load_run(run.path), lambda: ganforge.train(resume=run.path)):
        with pytest.raises(GanforgeError) as info:
            call()
        assert str(run.path / "config.json") in str(info.value)
    assert tree_snapshot(run.path) == before

"""Runs that survive: SIGKILL at random moments, then --resume, gives the uninterrupted run's
weights bit for bit; SIGTERM stops cleanly with a checkpoint; torn metrics lines are dropped."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time

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


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(
    tiny_options, tmp_path, without_wall_clock, seed
):
    options = {**tiny_options, **KILL_OPTIONS}
    options.pop("progress")
    straight = ganforge.train(**options, progress=False, out=str(tmp_path / "straight"))

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANFORGE_TEST_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "ganforge",
        "train",
        "--no-progress",
        "--out",
        str(killed),
        *_flags(options),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Wait for the first checkpoint, then kill at a random moment of the rest of the run.
    deadline = time.monotonic() + 60
    while not list((killed / "checkpoints").glob("step_*.safetensors")):
        assert process.poll() is None and time.monotonic() < deadline, "run never checkpointed"
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 0.5))
    assert process.poll() is None, "the run ended before it could be killed: make it longer"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    reached = ganforge.load_run(killed).checkpoints[-1][0]
    assert reached < options["steps"]

    resumed = ganforge.train(resume=killed, progress=False)
    assert resumed.step == options["steps"]
    assert _same_final_weights(straight, resumed)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())
    assert not list((killed / "checkpoints").glob(".*.tmp"))


def test_sigterm_finishes_the_step_and_checkpoints(tiny_train, during_generator_phase):
    straight = tiny_train("straight", steps=8, log_every=2)
    with (
        during_generator_phase(3, signal.SIGTERM),
        pytest.raises(GanforgeError, match="interrupted at step 3; checkpoint saved"),
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

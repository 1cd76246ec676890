"""A careless user's hostile inputs never cost data: pruning keeps the newest good checkpoint,
--out refuses a folder of other files, one writer per run (RUN/train.lock), a run stopped
before its first checkpoint resumes from step 0, and checkpoints are checked before they are
read (regular files only, declared sizes, finite weights, and errors naming both files)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

import ganforge
from ganforge import GanforgeError, checkpoint_file
from ganforge.cli import main
from ganforge.training import checkpoint as ckpt
from ganforge.training import loop, setup
from ganforge.training.loop import Trainer
from ganforge.training.run_lock import LOCK_FILE, RunLock


def _flip_one_tensor_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the last tensor's bytes
    path.write_bytes(bytes(data))


def _copy_run(run, tmp_path, name="run"):
    return ganforge.load_run(shutil.copytree(run.path, tmp_path / name))


def _rewrite(path, edit):
    """Rewrite a checkpoint as someone who edits its tensors and recomputes its checksum
    would, without save_checkpoint's own refusals (it will not write a NaN)."""
    tensors, metadata = ckpt.load_checkpoint(path)
    edit(tensors)
    metadata = {k: v for k, v in metadata.items() if k != "sha256"}
    metadata["sha256"] = checkpoint_file.checkpoint_digest(tensors, metadata)
    save_file(tensors, str(path), metadata={"ganforge": json.dumps(metadata, sort_keys=True)})


@contextlib.contextmanager
def _fails_instead_of_hanging(seconds=20):
    """Turn a blocked system call (opening a FIFO) into a test failure, not a hung suite."""

    def hung(signum, frame):
        raise AssertionError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- pruning ----------------------------------------------------------------------------------


def test_pruning_keeps_the_good_checkpoint_when_the_newest_is_damaged(tiny_train):
    """Damaged step 6, resumed to --steps 5 with --keep-checkpoints 1: the new step 5 (the
    newest that verifies) survives its own pruning, and the run resumes from it again."""
    run = tiny_train(steps=6, checkpoint_every=2, keep_checkpoints=5)
    damaged = run.checkpoints[-1][1]
    _flip_one_tensor_byte(damaged)
    with pytest.warns(UserWarning, match="step_0000006"):
        ganforge.train(resume=run.path, steps=5, keep_checkpoints=1)
    steps = [step for step, _ in run.checkpoints]
    assert 5 in steps and 2 not in steps and 4 not in steps  # the older good ones are pruned
    tensors, metadata = ckpt.load_checkpoint(
        run.path / "checkpoints" / checkpoint_file.checkpoint_name(5)
    )
    assert metadata["step"] == 5
    with pytest.warns(UserWarning, match="step_0000006"):
        again = ganforge.train(resume=run.path, steps=6)
    assert again.metrics()[-1]["step"] == 6


def test_pruning_without_a_known_good_checkpoint_verifies_the_kept_ones(tmp_path):
    for step in (5, 20, 100):
        ckpt.save_checkpoint(
            tmp_path / checkpoint_file.checkpoint_name(step), {"x": torch.ones(3)}, {}
        )
    _flip_one_tensor_byte(tmp_path / checkpoint_file.checkpoint_name(100))
    ckpt.prune_checkpoints(tmp_path, keep=1)
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [20, 100]


# ---- --out -----------------------------------------------------------------------------------


def test_out_into_a_folder_of_other_files_is_refused_and_left_alone(
    tmp_path, tiny_options, tree_snapshot, capsys
):
    folder = tmp_path / "holiday"
    (folder / "samples").mkdir(parents=True)
    (folder / "samples" / "beach.png").write_bytes(b"my photo")
    (folder / "metrics.jsonl").write_text("my own notes\n")
    before = tree_snapshot(folder)
    with pytest.raises(GanforgeError, match="^--out: ") as info:
        ganforge.train(**{**tiny_options, "out": str(folder)})
    assert str(folder) in str(info.value) and "not a ganforge run" in str(info.value)
    args = ["train", "--model", "mlp", "--data", "digits", "--steps", "2", "--out", str(folder)]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--out" in error and str(folder) in error
    assert tree_snapshot(folder) == before


def test_out_into_an_empty_folder_trains_there(tmp_path, tiny_options):
    (tmp_path / "empty").mkdir()
    run = ganforge.train(**{**tiny_options, "steps": 2, "out": str(tmp_path / "empty")})
    assert run.step == 2


# ---- one writer per run -----------------------------------------------------------------------


def _write_lock(run_dir, pid, host=None):
    owner = {"pid": pid, "host": host or socket.gethostname(), "since": 0}
    (run_dir / LOCK_FILE).write_text(json.dumps(owner))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names no process (until the system reuses it)
    return child.pid


def test_a_run_is_locked_while_it_trains_and_unlocked_after(tiny_train, monkeypatch, tmp_path):
    seen = []
    original = Trainer._iteration

    def watching(self, log_now):
        seen.append(json.loads((self.run_dir / LOCK_FILE).read_text()))
        return original(self, log_now)

    monkeypatch.setattr(Trainer, "_iteration", watching)
    run = tiny_train(steps=2)
    assert [owner["pid"] for owner in seen] == [os.getpid()] * 2
    assert seen[0]["host"] == socket.gethostname()
    assert not (run.path / LOCK_FILE).exists()
    ganforge.train(resume=run.path, steps=3)
    assert len(seen) == 3 and not (run.path / LOCK_FILE).exists()


def test_the_lock_is_removed_on_an_error_and_on_ctrl_c(
    tiny_train, during_generator_phase, tmp_path
):
    def hard_interrupt():
        raise KeyboardInterrupt

    with during_generator_phase(2, hard_interrupt), pytest.raises(GanforgeError, match="inside"):
        tiny_train("stopped", steps=4)
    assert (tmp_path / "stopped" / "config.json").is_file()
    assert not (tmp_path / "stopped" / LOCK_FILE).exists()
    done = tiny_train("done", steps=3)
    with pytest.raises(GanforgeError, match="^--steps"):  # an error after the lock was taken
        ganforge.train(resume=done.path, steps=2)
    assert not (done.path / LOCK_FILE).exists()
    ganforge.train(resume=done.path, steps=4)  # and nothing is left to refuse the next one


def test_a_second_writer_is_refused_while_the_run_trains(tiny_train, monkeypatch):
    """A --resume started while the run trains (here: from inside its own step 3) is refused
    with the pid of the process that trains it, and metrics.jsonl gets no record twice."""
    refusals = []
    original = Trainer._iteration

    def meddling(self, log_now):
        if self.state.step == 2:
            with pytest.raises(GanforgeError) as info:
                ganforge.train(resume=self.run_dir, steps=10)
            refusals.append(str(info.value))
        return original(self, log_now)

    monkeypatch.setattr(Trainer, "_iteration", meddling)
    run = tiny_train(steps=10, log_every=1, checkpoint_every=2)
    assert len(refusals) == 1
    assert refusals[0].startswith("--resume: ") and f"process {os.getpid()}" in refusals[0]
    assert [record["step"] for record in run.metrics()] == list(range(1, 11))


def test_a_live_lock_refuses_before_anything_is_read(tiny_train, tree_snapshot, monkeypatch):
    run = tiny_train(steps=2)
    _write_lock(run.path, os.getppid())  # pytest's parent: alive, and not this process
    before = tree_snapshot(run.path)
    monkeypatch.setattr(setup, "open_dataset", lambda *a, **k: pytest.fail("data was read"))
    with pytest.raises(GanforgeError, match=f"^--resume: .*process {os.getppid()}"):
        ganforge.train(resume=run.path, steps=4)
    assert tree_snapshot(run.path) == before


def test_the_ddp_launcher_checks_the_lock_and_never_takes_it(tiny_train, monkeypatch):
    """The --ddp parent refuses a locked run before it starts any process, and takes no lock
    itself (its children write: rank 0 takes it)."""
    run = tiny_train(steps=2)
    launched = []
    monkeypatch.setattr(loop, "launch", lambda *args: launched.append(os.path.exists(lock)))
    lock = run.path / LOCK_FILE
    ganforge.train(resume=run.path, steps=4, ddp=True)
    assert launched == [False]
    _write_lock(run.path, os.getppid())
    with pytest.raises(GanforgeError, match=f"process {os.getppid()}"):
        ganforge.train(resume=run.path, steps=4, ddp=True)
    assert launched == [False]


def test_a_stale_lock_is_taken_over_with_a_note(tiny_train):
    run = tiny_train(steps=2)
    dead = _dead_pid()
    _write_lock(run.path, dead)
    with pytest.warns(UserWarning, match=f"taking over the lock of process {dead}"):
        resumed = ganforge.train(resume=run.path, steps=4)
    assert resumed.step == 4 and not (run.path / LOCK_FILE).exists()


def test_a_lock_of_another_host_or_of_no_process_is_not_taken_over(tmp_path):
    _write_lock(tmp_path, _dead_pid(), host="another-machine")
    with pytest.raises(GanforgeError, match="another-machine"):
        RunLock.acquire(tmp_path, "--resume")
    (tmp_path / LOCK_FILE).write_text("")
    with pytest.raises(GanforgeError, match="names no process"):
        RunLock.acquire(tmp_path, "--resume")


def test_two_writers_race_for_the_lock_one_wins(tmp_path):
    first = RunLock.acquire(tmp_path, "--out")
    with pytest.raises(GanforgeError, match=f"process {os.getpid()}"):
        RunLock.acquire(tmp_path, "--out")
    first.release()
    RunLock.acquire(tmp_path, "--out").release()
    assert list(tmp_path.iterdir()) == []


# ---- a run stopped before its first checkpoint ---------------------------------------------


def test_ctrl_c_twice_before_the_first_checkpoint_resumes_from_step_0(
    tiny_train, during_generator_phase, without_wall_clock
):
    straight = tiny_train("straight", steps=8, log_every=2)

    def hard_interrupt():  # the second Ctrl-C: out of the middle of step 5
        raise KeyboardInterrupt

    with (
        during_generator_phase(5, hard_interrupt),
        pytest.raises(GanforgeError, match="none yet, so it starts over from step 0") as info,
    ):
        tiny_train("stopped", steps=8, log_every=2)
    assert "--resume" in str(info.value)
    stopped = ganforge.load_run(straight.path.parent / "stopped")
    assert stopped.checkpoints == [] and stopped.metrics()  # records of steps 2 and 4
    with pytest.raises(GanforgeError, match="already holds a run"):  # a fresh --out: refused
        tiny_train("stopped", steps=8, log_every=2)
    resumed = ganforge.train(resume=stopped.path)
    assert resumed.step == 8
    a, b = load_file(str(straight.checkpoints[-1][1])), load_file(str(resumed.checkpoints[-1][1]))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


# ---- checkpoints checked before they are used ---------------------------------------------


def test_a_nan_weight_with_a_valid_checksum_is_refused_naming_tensor_and_file(
    trained_run, tmp_path
):
    run = _copy_run(trained_run, tmp_path)
    (older_step, _), (_, newest) = run.checkpoints
    name = next(k for k in load_file(str(newest)) if k.startswith("networks.generator_ema."))

    def poison(tensors):
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] = float("nan")

    _rewrite(newest, poison)
    with pytest.raises(GanforgeError) as info:
        ckpt.load_checkpoint(newest)
    assert str(newest) in str(info.value) and name in str(info.value)
    with pytest.raises(GanforgeError, match="NaN"):
        ganforge.load_run(run.path).load(newest)
    with pytest.warns(UserWarning, match="NaN"):  # resume falls back to the older checkpoint
        resumed = ganforge.train(resume=run.path, steps=trained_run.step + 2)
    assert resumed.step == trained_run.step + 2


def test_an_edited_config_names_the_checkpoint_and_the_config(trained_run, tmp_path):
    run = _copy_run(trained_run, tmp_path)
    config_file = run.path / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "width": 16}))
    newest = run.checkpoints[-1][1]
    with pytest.raises(GanforgeError, match="does not match network") as info:
        ganforge.load_run(run.path).sample(4)
    assert str(newest) in str(info.value) and str(config_file) in str(info.value)
    with pytest.raises(GanforgeError, match="^--resume: .*does not match network") as info:
        ganforge.train(resume=run.path, steps=trained_run.step + 2)
    assert str(newest) in str(info.value) and str(config_file) in str(info.value)
    config_file.write_text(json.dumps({**config, "lr_d": 0.01}))  # same shapes, other run
    with pytest.raises(GanforgeError, match="different config") as info:
        ganforge.train(resume=run.path, steps=trained_run.step + 2)
    assert str(newest) in str(info.value) and str(config_file) in str(info.value)


def _sparse_checkpoint(path, entries):
    """A safetensors file whose header declares `entries` (name: (dtype, shape)), its data a
    hole: a few KB on disk however much it declares."""
    sizes = {"F32": 4, "U8": 1}
    header, offset = {}, 0
    for name, (dtype, shape) in entries.items():
        size = sizes[dtype] * int(torch.tensor(shape).prod())
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"ganforge": json.dumps({"format": checkpoint_file.FORMAT})}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)


def test_a_sparse_checkpoint_declaring_gigabytes_is_refused_before_reading(
    trained_run, tmp_path, monkeypatch
):
    run = _copy_run(trained_run, tmp_path)
    family = run.load()
    weight = next(
        k for k in checkpoint_file.expected_tensors(dict(family.networks.items())) if "weight" in k
    )
    monkeypatch.setattr(
        checkpoint_file, "load_file", lambda *a, **k: pytest.fail("tensors were read")
    )
    huge = tmp_path / "huge.safetensors"
    _sparse_checkpoint(huge, {weight: ("F32", [30000, 25000])})  # 3 GB declared
    assert huge.stat().st_size > 3 * 10**9
    with pytest.raises(GanforgeError, match="does not match network") as info:
        ganforge.load_run(run.path).load(huge)
    assert weight in str(info.value) and str(huge) in str(info.value)
    _sparse_checkpoint(huge, {"optimizers.generator.state.0.exp_avg": ("F32", [750_000_000])})
    with pytest.raises(GanforgeError, match="larger than any tensor of the network") as info:
        ganforge.load_run(run.path).load(huge)
    assert str(huge) in str(info.value)
    many = {f"rng.{i}": ("U8", [2**20]) for i in range(64)}  # each small, 64 MB in all
    _sparse_checkpoint(huge, many)
    with pytest.raises(GanforgeError, match="more than a checkpoint of the network"):
        ganforge.load_run(run.path).load(huge)


def test_declared_tensors_must_fit_the_file(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.ones(4)}, {"step": 1})
    header, data_size = checkpoint_file.read_header(path)
    assert header["w"]["shape"] == [4] and data_size == 16
    data = path.read_bytes()
    path.write_bytes(data[:-4])  # the tensor's last float cut off
    with pytest.raises(GanforgeError, match="damaged") as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)
    path.write_bytes(struct.pack("<Q", 2**40) + data[8:])  # a header longer than the file
    with pytest.raises(GanforgeError, match="header of 1099511627776 bytes"):
        ckpt.load_checkpoint(path)


def test_a_fifo_named_like_a_checkpoint_never_blocks(trained_run, tmp_path):
    run = _copy_run(trained_run, tmp_path)
    fifo = run.path / "checkpoints" / checkpoint_file.checkpoint_name(99999)
    os.mkfifo(fifo)
    with _fails_instead_of_hanging():
        expected = [step for step, _ in trained_run.checkpoints]
        assert [step for step, _ in run.checkpoints] == expected
        assert run.sample(2, seed=0).shape[0] == 2
        with pytest.raises(GanforgeError, match="not a regular file") as info:
            ckpt.load_checkpoint(fifo)
        assert str(fifo) in str(info.value)
        with pytest.raises(GanforgeError, match="not a regular file"):
            ganforge.load_run(run.path).load(fifo)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the FIFO is not even a skipped checkpoint
            ganforge.train(resume=run.path, steps=trained_run.step + 1)

"""Exact resume and reproducibility: N steps straight == N/2 steps + resume to N, bit for bit;
same seed == same run; what may and may not change on --resume."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.errors import TrainingStopped
from ganforge.models import list_models, model_defaults, model_kind


def final_tensors(run) -> dict[str, torch.Tensor]:
    return load_file(str(run.checkpoints[-1][1]))


def assert_same_tensors(a: dict, b: dict, only_networks: bool = False):
    keys = [k for k in a if k.startswith("networks.")] if only_networks else list(a)
    assert set(keys) <= set(b)
    if not only_networks:
        assert set(a) == set(b)
    different = [k for k in keys if not torch.equal(a[k], b[k])]
    assert not different, f"differ: {different[:5]}"


@pytest.mark.parametrize("model", list_models())
def test_resume_is_bit_identical_to_a_straight_run(
    tiny_train, without_wall_clock, model_options, model
):
    steps, half = 12, 6
    options = {"model": model, "log_every": 3, "sample_every": 6, **model_options(model)}
    if model_defaults(model).get("reg_decay", "none") != "none":  # r3gan: gamma follows
        options["reg_decay"] = "none"  # --steps, which this split changes (test_r3gan: same)
    straight = tiny_train("straight", steps=steps, **options)
    first_half = tiny_train("split", steps=half, **options)
    assert first_half.step == half
    resumed = ganforge.train(resume=first_half.path, steps=steps)

    assert resumed.path == first_half.path
    assert resumed.step == steps
    assert resumed.config.steps == steps
    a, b = final_tensors(straight), final_tensors(resumed)
    assert any(k.startswith("networks.") and "_ema." in k for k in a)  # G's (a VAE: its decoder's)
    # every network (G, D, G's EMA), optimiser moment and RNG state
    assert_same_tensors(a, b)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())
    assert [r["step"] for r in resumed.metrics()] == [3, 6, 9, 12]
    if not model_kind(model).translator:  # a translator has no samples: its grids show it
        assert np.array_equal(resumed.sample(8, seed=1), straight.sample(8, seed=1))
    for name in ("step_0000006.png", "step_0000012.png"):
        assert (resumed.path / "samples" / name).read_bytes() == (
            straight.path / "samples" / name
        ).read_bytes()


@pytest.mark.parametrize(
    "options",
    [
        {"d_steps": 2, "optimizer": "rmsprop"},
        {"model": "dcgan", "ema_decay": 0.0, "optimizer": "sgd", "sample_every": 3},
        {"unroll": 3, "optimizer": "rmsprop", "beta1": 0.5},  # unrolls from D's moments
        {"lr_warmup": 8},  # the rates follow the step, across the split
        {"replay": 24},  # the pool's fakes and its random draws
        # p moves every 4 D steps: the split falls between two adjustments
        {"ada": 0.01, "ada_kimg": 0.5},
        {"loss": "relativistic", "r1": 1.0, "r2": 1.0, "reg_every": 3},  # steps 0, 3, 6, 9
        {"accumulate": 3, "d_steps": 2},
        {"loss": "wasserstein", "clip_weights": 0.05, "optimizer": "rmsprop"},
        {"model": "dcgan", "reuse_fakes": True, "accumulate": 2, "d_steps": 2},
    ],
    ids=[
        "mlp-d2-rmsprop",
        "dcgan-no-ema-sgd",
        "mlp-unroll3-rmsprop",
        "mlp-warmup",
        "mlp-replay",
        "mlp-ada",
        "mlp-lazy-r1-r2",
        "mlp-accumulate",
        "mlp-clip-weights",
        "dcgan-reuse-fakes",
    ],
)
def test_resume_with_other_settings_and_an_unaligned_split(tiny_train, options):
    """Weights stay exact when the split point is not a multiple of the logging interval."""
    options = {"log_every": 4, **options}
    straight = tiny_train("straight", steps=11, **options)
    split = tiny_train("split", steps=5, **options)
    resumed = ganforge.train(resume=str(split.path), steps=11)
    assert_same_tensors(final_tensors(straight), final_tensors(resumed))
    if "ada" in options:  # ADA was really on: its probability moved, the same in both runs
        p = [r["ada_p"] for r in straight.metrics() if "ada_p" in r]
        assert max(p) > 0
        assert p == [r["ada_p"] for r in resumed.metrics() if "ada_p" in r]
    if "replay" in options:  # the pool went into the checkpoints, full
        assert final_tensors(resumed)["family.replay.images"].shape[0] == 24


def test_resume_from_an_intermediate_checkpoint_rewrites_later_records(
    tiny_train, without_wall_clock
):
    """A run stopped after its step-8 checkpoint (records to 12 on disk, checkpoint 12 lost)
    resumes from 8, drops the stale records and rewrites them identically."""
    straight = tiny_train("straight", steps=12, log_every=4)
    crashed = tiny_train("crashed", steps=12, log_every=4, checkpoint_every=4, keep_checkpoints=5)
    assert [s for s, _ in crashed.checkpoints] == [4, 8, 12]
    crashed.checkpoints[-1][1].unlink()  # as if the process died before writing step 12
    # scribble into the stale record so that a kept copy would be noticed
    path = crashed.path / "metrics.jsonl"
    records = crashed.metrics()
    records[-1]["loss_d"] = 123.0
    path.write_text("".join(json.dumps(r) + "\n" for r in records))

    resumed = ganforge.train(resume=crashed.path)
    assert resumed.step == 12
    assert_same_tensors(final_tensors(straight), final_tensors(resumed))
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


def test_interrupt_between_iterations_saves_a_resumable_checkpoint(tiny_train, monkeypatch):
    from ganforge.training.loop import Trainer

    straight = tiny_train("straight", steps=8, log_every=2)
    original = Trainer._iteration
    calls = {"n": 0}

    def interrupted(self, log_now):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, log_now)

    monkeypatch.setattr(Trainer, "_iteration", interrupted)
    with pytest.raises(GanforgeError, match="stopped at step 4 as asked; checkpoint") as info:
        tiny_train("stopped", steps=8, log_every=2)
    assert "--resume" in str(info.value)
    monkeypatch.setattr(Trainer, "_iteration", original)

    stopped = ganforge.load_run(straight.path.parent / "stopped")
    assert stopped.step == 4
    assert isinstance(info.value, TrainingStopped)  # asked for: the CLI does not call it an error
    for written in ("samples/final.png", "loss_curves.png"):  # what a student looks at first
        assert (stopped.path / written).is_file(), written
    resumed = ganforge.train(resume=stopped.path)
    assert_same_tensors(final_tensors(straight), final_tensors(resumed))


def test_ctrl_c_inside_an_iteration_finishes_it_and_resumes_exactly(
    tiny_train, during_generator_phase, without_wall_clock
):
    """A real Ctrl-C (SIGINT) arrives between D's and G's phase of an iteration: the loop must
    finish that iteration, save a whole-iteration checkpoint and stop; resuming from it gives
    the same run as never stopping."""
    straight = tiny_train("straight", steps=8, log_every=2)
    with (
        during_generator_phase(5, signal.SIGINT),  # D has stepped, G has not
        pytest.raises(GanforgeError, match="stopped at step 5 as asked; checkpoint"),
    ):
        tiny_train("stopped", steps=8, log_every=2)

    stopped = ganforge.load_run(straight.path.parent / "stopped")
    assert stopped.step == 5
    assert stopped.metrics()[-1].get("partial") is True  # step 5 sits between two records
    resumed = ganforge.train(resume=stopped.path)
    assert_same_tensors(final_tensors(straight), final_tensors(resumed))
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


def test_a_hard_interrupt_mid_iteration_saves_nothing_half_done(
    tiny_train, during_generator_phase, tmp_path
):
    """A KeyboardInterrupt that escapes mid-iteration (a second Ctrl-C) must not write a
    checkpoint of a half-updated state: the newest checkpoint stays the last whole one."""

    def hard_interrupt():
        raise KeyboardInterrupt

    expected = r"interrupted inside step 5 \(last checkpoint: step 4\)"
    with (
        during_generator_phase(5, hard_interrupt),
        pytest.raises(GanforgeError, match=expected),
    ):
        tiny_train("stopped", steps=8, checkpoint_every=2)
    assert [step for step, _ in ganforge.load_run(tmp_path / "stopped").checkpoints] == [2, 4]


def test_cli_resume_extends_a_finished_run(tiny_train, capsys):
    run = tiny_train(steps=6, log_every=3)
    assert main(["train", "--resume", str(run.path), "--steps", "9"]) == 0
    assert "step 9" in capsys.readouterr().out
    extended = ganforge.load_run(run.path)
    assert extended.step == 9
    assert extended.config.steps == 9
    assert json.loads((run.path / "config.json").read_text())["steps"] == 9
    assert [r["step"] for r in extended.metrics()] == [3, 6, 9]


def test_resume_may_change_logging_and_checkpoint_options(tiny_train):
    run = tiny_train(steps=4, log_every=2)
    resumed = ganforge.train(
        resume=run.path,
        steps=6,
        log_every=1,
        checkpoint_every=1,
        keep_checkpoints=2,
        sample_every=1,
        progress=False,
    )
    assert [s for s, _ in resumed.checkpoints] == [5, 6]
    assert [r["step"] for r in resumed.metrics()] == [2, 4, 5, 6]
    assert resumed.config.log_every == 1


def test_resume_accepts_unchanged_values_of_other_options(tiny_train):
    run = tiny_train(steps=3)
    resumed = ganforge.train(resume=run.path, steps=4, lr_g=run.config.lr_g, model="mlp")
    assert resumed.step == 4


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [
        ("lr_g", 1e-3, "--lr-g"),
        ("seed", 5, "--seed"),
        ("d_steps", 2, "--d-steps"),
        ("model", "dcgan", "--model"),
        ("batch_size", 32, "--batch-size"),
    ],
)
def test_resume_refuses_trajectory_changes_and_leaves_the_run_alone(
    tiny_train, tree_snapshot, option, value, flag
):
    run = tiny_train(steps=3)
    before = tree_snapshot(run.path)
    with pytest.raises(GanforgeError) as info:
        ganforge.train(resume=run.path, steps=6, **{option: value})
    message = str(info.value)
    assert message.startswith(flag + ":") and "resume" in message
    assert tree_snapshot(run.path) == before


def test_resume_detects_an_edited_config(tiny_train):
    run = tiny_train(steps=3)
    path = run.path / "config.json"
    config = json.loads(path.read_text())
    config["lr_d"] = 0.01
    path.write_text(json.dumps(config))
    with pytest.raises(GanforgeError, match="^--resume: .*different config"):
        ganforge.train(resume=run.path)


def test_resume_without_any_checkpoint_starts_over_from_step_0(tiny_train, without_wall_clock):
    """A run folder whose config is intact but that holds no checkpoint (stopped before its
    first one) trains from step 0, as a new run of its config would."""
    straight = tiny_train("straight", steps=5)
    run = tiny_train(steps=3)
    for _, path in run.checkpoints:
        path.unlink()
    resumed = ganforge.train(resume=run.path, steps=5)
    assert resumed.step == 5
    assert_same_tensors(final_tensors(straight), final_tensors(resumed))
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(GanforgeError, match="not a ganforge run"):
        ganforge.train(resume=tmp_path)


# ---- reproducibility ----------------------------------------------------------------------


@pytest.mark.parametrize("model", list_models())
def test_same_seed_same_run_different_seed_different_run(
    tiny_train, without_wall_clock, model_options, model
):
    options = {"model": model, "steps": 6, "log_every": 2, **model_options(model)}
    a = tiny_train("a", seed=7, **options)
    b = tiny_train("b", seed=7, **options)
    c = tiny_train("c", seed=8, **options)
    assert without_wall_clock(a.metrics()) == without_wall_clock(b.metrics())
    assert_same_tensors(final_tensors(a), final_tensors(b), only_networks=True)
    assert without_wall_clock(a.metrics()) != without_wall_clock(c.metrics())
    if model_kind(model).translator:  # a translator has no samples to compare
        return
    assert np.array_equal(a.sample(16, seed=0), b.sample(16, seed=0))
    assert not np.array_equal(a.sample(16, seed=0), c.sample(16, seed=0))


def test_resume_keeps_the_run_folder(tiny_train, tmp_path):
    run = tiny_train(steps=2)
    assert run.config.out == str(run.path)
    resumed = ganforge.train(resume=run.path, steps=3, out=str(run.path))  # same folder: fine
    assert resumed.step == 3
    with pytest.raises(GanforgeError, match="^--out:"):
        ganforge.train(resume=run.path, steps=4, out=str(tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere").exists()

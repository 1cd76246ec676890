"""--lr-warmup and --lr-decay: every network's rate is its configured rate times one factor of
the step, written into the optimisers before each iteration and kept through checkpoints."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.schedule import apply_schedule, lr_factor, start_schedule
from tiny import TINY_OPTIONS


def config(**options) -> TrainConfig:
    return TrainConfig(steps=110, **options)


@pytest.mark.parametrize(
    ("options", "step", "expected"),
    [
        ({"lr_warmup": 10}, 0, 0.1),  # the first iteration takes a tenth
        ({"lr_warmup": 10}, 9, 1.0),
        ({"lr_warmup": 10}, 100, 1.0),  # no decay: flat after the warm-up
        ({"lr_decay": "linear", "lr_warmup": 10}, 60, 0.5),  # half-way through the decay
        ({"lr_decay": "linear"}, 109, 1 / 110),
        ({"lr_decay": "cosine", "lr_warmup": 10}, 35, (1 + math.cos(math.pi / 4)) / 2),
        ({"lr_decay": "cosine", "lr_warmup": 10}, 60, 0.5),
        ({"lr_decay": "cosine"}, 0, 1.0),
        ({"lr_decay": "linear"}, 200, 0.0),  # past --steps (never trained): not negative
    ],
)
def test_the_factor_of_each_schedule(options, step, expected):
    assert lr_factor(config(**options), step) == pytest.approx(expected)


def test_a_schedule_scales_every_group_from_its_own_base():
    scheduled = config(lr_decay="linear")
    optimizers = [
        torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=0.4),
        torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=0.2),
    ]
    start_schedule(scheduled, optimizers)
    apply_schedule(scheduled, optimizers, 55)
    assert [o.param_groups[0]["lr"] for o in optimizers] == pytest.approx([0.2, 0.1])
    apply_schedule(scheduled, optimizers, 0)  # from the base, not from the last rate
    assert [o.param_groups[0]["lr"] for o in optimizers] == pytest.approx([0.4, 0.2])


def test_without_a_schedule_the_rates_are_never_touched():
    plain = config()
    optimizer = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=0.3)
    start_schedule(plain, [optimizer])
    apply_schedule(plain, [optimizer], 50)
    assert optimizer.param_groups[0]["lr"] == 0.3 and "base_lr" not in optimizer.param_groups[0]


def test_a_run_ends_at_the_decayed_rate_and_checkpoints_its_base(tmp_path):
    run = ganforge.train(
        **{**TINY_OPTIONS, "steps": 8}, lr_decay="linear", out=str(tmp_path / "decay")
    )
    _, meta = load_checkpoint(run.checkpoints[-1][1])
    group = meta["optimizers"]["generator"]["param_groups"][0]
    assert group["base_lr"] == run.config.lr_g
    assert group["lr"] == pytest.approx(run.config.lr_g * (1 - 7 / 8))  # the 8th iteration's


def test_a_scheduled_run_resumes_exactly_to_the_same_steps(tmp_path):
    """The decay follows --steps: a run resumed to its own --steps is the run uninterrupted."""
    options = {**TINY_OPTIONS, "steps": 10, "checkpoint_every": 5, "keep_checkpoints": 5}
    straight = ganforge.train(
        **options, lr_decay="cosine", lr_warmup=3, out=str(tmp_path / "straight")
    )
    stopped = tmp_path / "stopped"
    shutil.copytree(straight.path, stopped)
    (stopped / "checkpoints" / straight.checkpoints[-1][1].name).unlink()  # as if it stopped at 5
    resumed = ganforge.train(resume=str(stopped))
    a, _ = load_checkpoint(straight.checkpoints[-1][1])
    b, _ = load_checkpoint(resumed.checkpoints[-1][1])
    assert resumed.step == 10 and set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_schedules_are_refused_by_name():
    with pytest.raises(GanforgeError, match="^--lr-decay: .*step"):
        TrainConfig.from_dict({"lr_decay": "step"})
    with pytest.raises(GanforgeError, match="^--lr-warmup: must be 0"):
        TrainConfig.from_dict({"lr_warmup": -5})

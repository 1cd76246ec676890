"""The doctor across checkpoints: a NaN rollback survives an interrupt and a resume exactly
once, and a malformed doctor state in a checkpoint is a one-line GanforgeError, never a
TypeError or KeyError (a seeded fuzz over a real state)."""

from __future__ import annotations

import copy
import json
import math
import random
import re
import signal

import pytest
import torch
from safetensors import safe_open

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.models import build_model
from ganforge.training import doctor as dx
from ganforge.training.checkpoint import check_metadata, load_checkpoint, save_checkpoint


def checkpoint_meta(path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["ganforge"])


def finite_state(path) -> bool:
    tensors, _ = load_checkpoint(path)
    return all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


# ---- a rollback, then an interrupt, then a resume ------------------------------------------------


def test_a_rollback_is_kept_once_across_an_interrupt_and_a_resume(
    tiny_train, nan_generator_loss, monkeypatch, during_generator_phase, without_wall_clock
):
    """NaN at step 7 is found at the step-10 record and training goes back to step 5; Ctrl-C
    at step 8 of the second pass saves a checkpoint *before* the step the rollback was logged
    at. The resumed run must keep that rollback (once), and match a run never interrupted."""
    nan_generator_loss({7})
    straight = tiny_train("straight", steps=20)
    nan_generator_loss({7})  # the same NaN in the run that will be interrupted
    with (
        during_generator_phase(13, signal.SIGINT),  # G calls 1-10, then 11, 12, 13 = step 8
        pytest.raises(GanforgeError, match="stopped at step 8 as asked; checkpoint"),
    ):
        tiny_train("stopped", steps=20)
    monkeypatch.undo()  # the resumed process has no NaN of its own

    stopped = ganforge.load_run(straight.path.parent / "stopped")
    assert stopped.step == 8 and [e["step"] for e in stopped.events()] == [10]
    assert checkpoint_meta(stopped.checkpoints[-1][1])["doctor"]["rollbacks"] == 1
    resumed = ganforge.train(resume=stopped.path, steps=20)

    rollbacks = [e for e in resumed.events() if e["event"] == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0]["step"] == 10 and rollbacks[0]["evidence"]["returned_to_step"] == 5
    assert resumed.events() == straight.events()
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())
    final = resumed.checkpoints[-1][1]
    assert resumed.step == 20 and finite_state(final)
    meta = checkpoint_meta(final)
    assert meta["doctor"]["rollbacks"] == 1
    lr = {name: state["param_groups"][0]["lr"] for name, state in meta["optimizers"].items()}
    assert lr == pytest.approx({"generator": 2e-4, "discriminator": 1e-4})
    a, _ = load_checkpoint(final)
    b, _ = load_checkpoint(straight.checkpoints[-1][1])
    assert all(torch.equal(a[k], b[k]) for k in b if k.startswith("networks."))


def test_a_resume_from_before_a_rollback_forgets_it(tiny_train, nan_generator_loss, monkeypatch):
    """From a checkpoint written before the NaN (it counts no rollback), the rollback is
    not part of the history the resumed run carries on: its event goes."""
    nan_generator_loss({7})
    run = tiny_train(steps=15, checkpoint_every=5, keep_checkpoints=5)
    monkeypatch.undo()
    assert [e["event"] for e in run.events()] == ["rollback"]
    assert checkpoint_meta(run.checkpoints[0][1])["doctor"]["rollbacks"] == 0  # step 5
    for _, path in run.checkpoints[1:]:
        path.unlink()
    resumed = ganforge.train(resume=run.path, steps=15)
    assert resumed.events() == []
    assert checkpoint_meta(resumed.checkpoints[-1][1])["doctor"]["rollbacks"] == 0


# ---- the doctor's state: its schema --------------------------------------------------------------


@pytest.fixture
def doctor(tmp_path, digits):
    config = TrainConfig(model="mlp", width=8, z_dim=8, data="digits", doctor_warmup=0)
    family = build_model(config, 28, 1)
    return dx.Doctor(config, family, digits, tmp_path / "events.jsonl", torch.device("cpu"))


@pytest.fixture(scope="module")
def real_state(tmp_path_factory):
    """The doctor state in a real tiny run's checkpoint: windows, streaks, a firing event."""
    options = {
        "model": "mlp",
        "data": "digits",
        "width": 8,
        "batch_size": 16,
        "z_dim": 8,
        "steps": 30,
        "progress": False,
        "log_every": 5,
        "checkpoint_every": 100,
        "n_grid": 16,
        "doctor_warmup": 0,
        "doctor_patience": 1,
        "out": str(tmp_path_factory.mktemp("doctor") / "run"),
    }
    run = ganforge.train(**options)
    return checkpoint_meta(run.checkpoints[-1][1])["doctor"]


def test_a_real_state_has_every_kind_of_field(real_state):
    detectors = real_state["detectors"]
    assert set(detectors) == {d.name for d in dx.build_detectors(TrainConfig())}
    assert len(detectors["oscillation"]["state"]["loss_d"]) == 6
    assert isinstance(detectors["mode_collapse"]["state"]["streak"], int)
    assert any(entry["firing"] for entry in detectors.values())


MALFORMED = [
    ({"oscillation": {"loss_d": 3.0}}, r"oscillation\.state\.loss_d must be a list"),
    ({"oscillation": {"loss_g": [0.7, "0.8"]}}, r"oscillation\.state\.loss_g must be a list"),
    ({"exploding": {"grad_norm_generator": [1.0, math.nan]}}, r"exploding\.state\.grad_norm"),
    ({"d_overpowering": {"streak": 1.5}}, r"d_overpowering\.state\.streak must be a whole"),
    ({"g_overpowering": {"streak": True}}, r"g_overpowering\.state\.streak"),
    ({"stalled": {"best_step": -5}}, r"stalled\.state\.best_step"),
    ({"mode_collapse": {"loss_d": [1.0]}}, r"mode_collapse\.state has a field no"),
    ({"vanishing": {"grad_norm_discriminator": [1.0]}}, r"vanishing\.state has a field no"),
]


@pytest.mark.parametrize(("states", "message"), MALFORMED)
def test_a_malformed_detector_state_names_its_field(doctor, real_state, states, message):
    saved = copy.deepcopy(real_state)
    for name, state in states.items():
        saved["detectors"][name]["state"] = state
    before = doctor.state_dict()
    with pytest.raises(GanforgeError, match=message) as error:
        doctor.load_state_dict(saved)
    assert "\n" not in str(error.value)
    assert doctor.state_dict() == before  # nothing was half-loaded


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("rollbacks"), r"^doctor must be an object with rollbacks, detectors"),
        (lambda s: s.update(extra=1), r"^doctor must be an object with rollbacks, detectors"),
        (lambda s: s.update(rollbacks="2"), r"^doctor\.rollbacks must be a whole number"),
        (lambda s: s.update(detectors=[]), r"^doctor\.detectors must be an object"),
        (lambda s: s["detectors"].update(sleepy={}), r"^doctor\.detectors must be keyed by"),
        (lambda s: s["detectors"]["stalled"].pop("quiet"), r"detectors\.stalled must be an obj"),
        (lambda s: s["detectors"]["stalled"].update(firing=1), r"stalled\.firing must be true"),
        (lambda s: s["detectors"]["stalled"].update(quiet=-1), r"stalled\.quiet must be a whole"),
        (lambda s: s["detectors"].update(stalled=None), r"^doctor\.detectors\.stalled must be"),
        (lambda s: s["detectors"]["stalled"].update(state=[]), r"stalled\.state must be an obj"),
    ],
)
def test_a_malformed_doctor_state_names_its_field(doctor, real_state, change, message):
    saved = copy.deepcopy(real_state)
    change(saved)
    with pytest.raises(GanforgeError, match=message):
        doctor.load_state_dict(saved)
    with pytest.raises(GanforgeError, match=r"^doctor must be an object"):
        doctor.load_state_dict(["rollbacks", 0])


def test_a_state_without_some_detector_starts_that_one_afresh(doctor, real_state):
    saved = copy.deepcopy(real_state)
    del saved["detectors"]["oscillation"]
    doctor.load_state_dict(saved)
    assert doctor.state_dict()["detectors"]["oscillation"] == {
        "state": {},
        "firing": False,
        "quiet": 0,
    }
    assert doctor.state_dict()["detectors"]["exploding"] == real_state["detectors"]["exploding"]


# ---- ...and a fuzz over it -----------------------------------------------------------------------

STRANGE_VALUES = [None, True, -1, 2**60, 10**400, 1.5, math.nan, math.inf, "7", [], {}, [1, "x"]]


def corrupt(state: dict, rng: random.Random) -> dict:
    """`state` with one randomly chosen field (at any depth) replaced, deleted or joined by
    an unknown one."""
    state = copy.deepcopy(state)
    holder, key = None, None
    node = state
    for _ in range(rng.randint(1, 5)):  # walk down a random path
        if isinstance(node, dict) and node:
            holder, key = node, rng.choice(sorted(node))
        elif isinstance(node, list) and node:
            holder, key = node, rng.randrange(len(node))
        else:
            break
        node = holder[key]
    action = rng.choice(["replace", "replace", "delete", "add"])
    if holder is None or (action == "delete" and isinstance(holder, list)):
        action = "replace"
    if action == "replace":
        holder[key] = copy.deepcopy(rng.choice(STRANGE_VALUES))
    elif action == "delete":
        del holder[key]
    elif isinstance(holder, dict):
        holder["unexpected"] = rng.choice(STRANGE_VALUES)
    else:
        holder.append(rng.choice(STRANGE_VALUES))
    return state


def exercise(doctor: dx.Doctor) -> None:
    """Records that reach every detector, so a state that loaded is also used."""
    for step in range(100, 400, 50):
        doctor.observe(
            {
                "step": step,
                "loss_d": 1.3 + (step % 100) / 100,
                "loss_g": 0.7,
                "d_real": 0.6,
                "d_fake": 0.4,
                "d_accuracy": 0.99,
                "grad_norm_discriminator": 1.0,
                "grad_norm_generator": 0.001,
                "weight_norm_generator": 10.0,
                "diversity": 0.1,
                "diversity_real": 6.0,
            }
        )
        doctor.observe({"step": step, "eval_fid": 40.0, "eval_best": step == 100})


def test_fuzz_a_corrupted_doctor_state_is_refused_or_works(doctor, real_state, tmp_path):
    rng = random.Random(5)
    refused = 0
    for case in range(40):
        saved = corrupt(real_state, rng)
        try:
            check_metadata({"doctor": saved}, tmp_path / "step_0000030.safetensors")
            checked = True
        except GanforgeError as exc:
            assert "\n" not in str(exc), case
            checked = False
        try:
            doctor.load_state_dict(saved)
        except GanforgeError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("doctor"), (case, str(exc))
            refused += 1
            continue
        assert checked, (case, saved)  # what the doctor takes, the checkpoint check lets by
        loaded = doctor.state_dict()  # taken as it is (a detector left out starts afresh)...
        assert loaded["rollbacks"] == saved["rollbacks"]
        assert all(loaded["detectors"][n] == entry for n, entry in saved["detectors"].items())
        exercise(doctor)  # ...and used without a TypeError
    assert 25 <= refused < 40  # most corruptions are refused, some are harmless


# ---- ...and on --resume --------------------------------------------------------------------------


def rewrite_doctor_state(path, change) -> None:
    """Change a checkpoint's doctor state and write it back with a valid checksum, as a
    hand-edited (or hostile) file would be."""
    tensors, meta = load_checkpoint(path)
    change(meta["doctor"])
    save_checkpoint(path, tensors, meta)


def test_resume_refuses_a_malformed_doctor_state_naming_the_checkpoint(tiny_train):
    run = tiny_train(steps=10)
    path = run.checkpoints[-1][1]
    rewrite_doctor_state(path, lambda d: d["detectors"]["oscillation"]["state"].update(loss_d=3))
    expected = (
        rf"^--resume: checkpoint '{re.escape(str(path))}': "
        r"doctor\.detectors\.oscillation\.state\.loss_d must be a list of finite numbers, got 3$"
    )
    with pytest.raises(GanforgeError, match=expected):
        ganforge.train(resume=run.path, steps=20)


def test_a_checkpoint_whose_doctor_state_is_not_an_object_is_invalid(tiny_train):
    run = tiny_train(steps=10)
    path = run.checkpoints[-1][1]
    rewrite_doctor_state(path, lambda d: d.update(rollbacks="two"))
    with pytest.raises(GanforgeError, match=r"is invalid: doctor\.rollbacks must be a whole"):
        load_checkpoint(path)
    with pytest.raises(GanforgeError, match=r"no valid checkpoint .*doctor\.rollbacks"):
        ganforge.train(resume=run.path, steps=20)

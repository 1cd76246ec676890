"""The Lab tab's training without a browser (app/lab.py, app/lab_view.py): a page session's
Lab trains through the Trainer a few steps at a time, stays put between ticks, draws a frame
that moves with training, stops at its bound, reports the doctor's events, and removes its
temporary folder when closed, replaced, or left idle. The page itself: test_page.py."""

from __future__ import annotations

import signal
import tempfile
import threading

import numpy as np
import pytest

from ganforge import GanforgeError
from ganforge.app.lab import MAX_STEPS, Lab, LabSessions, LabSettings
from ganforge.app.lab_view import describe_events, describe_progress, draw_curves
from ganforge.models.mlp import MLPGenerator

SMALL = {"steps": 200, "doctor_warmup": 0}


@pytest.fixture(autouse=True)
def temporary_folders(tmp_path, monkeypatch):
    """The Labs' temporary folders in the test's own folder (to count them); the working
    directory too, to see that nothing is written into a runs folder."""
    folders = tmp_path / "temporary"
    folders.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folders))
    monkeypatch.chdir(tmp_path)
    return folders


def labs_on_disk(folders) -> list:
    return sorted(folders.glob("ganforge-lab-*"))


@pytest.fixture
def lab():
    opened = Lab(LabSettings(**SMALL))
    yield opened
    opened.close()


def test_a_lab_trains_through_the_trainer_and_stays_put_between_ticks(lab, tmp_path):
    assert lab.step == 0 and lab.bound == 200
    first = lab.frame()
    assert lab.advance(30) == 30 and lab.step == 30
    assert [r["step"] for r in lab.records()] == [25]  # a record every 25 steps, as a run's
    record = lab.records()[0]
    assert {"loss_d", "loss_g", "modes_captured", "num_modes"} <= set(record)
    trained = lab.frame()
    assert first.shape == trained.shape and first.dtype == np.uint8 and first.shape[2] == 3
    assert not np.array_equal(first, trained)  # G and D moved
    assert np.array_equal(lab.frame(), trained)  # paused: the same step draws the same frame
    assert lab.step == 30
    assert lab.run_dir.is_relative_to(tempfile.gettempdir())
    assert not (tmp_path / "runs").exists()  # never into the user's runs folder


def test_the_settings_reach_the_run(tmp_path):
    settings = LabSettings(
        data="grid25",
        loss="hinge",
        optimizer="rmsprop",
        lr_g=2e-4,
        lr_d=5e-4,
        lr_decay="linear",
        pack=3,
        minibatch_std=True,
        feature_matching=True,
        steps=50,
    )
    lab = Lab(settings)
    try:
        config = lab.trainer.config
        assert (config.data, config.loss, config.optimizer) == ("grid25", "hinge", "rmsprop")
        assert (config.lr_g, config.lr_d, config.pack) == (2e-4, 5e-4, 3)
        assert config.lr_decay == "linear"
        assert config.minibatch_std and config.feature_matching
        assert config.batch_size == 99  # PacGAN's 100, cut to a multiple of the pack
        assert lab.advance(5) == 5
    finally:
        lab.close()


def test_an_unrolled_lab_trains():
    lab = Lab(LabSettings(unroll=2, steps=10))
    try:
        assert lab.trainer.config.unroll == 2
        assert lab.advance(3) == 3
    finally:
        lab.close()


def test_the_bound_is_enforced_with_a_clear_message(temporary_folders):
    lab = Lab(LabSettings(steps=40))
    try:
        assert lab.advance(30) == 30
        assert lab.advance(30) == 10 and lab.step == 40 and lab.finished
        with pytest.raises(
            GanforgeError, match="^the lab stopped at its bound of 40 steps: press Reset"
        ):
            lab.advance(1)
        assert lab.step == 40
    finally:
        lab.close()
    with pytest.raises(GanforgeError, match=f"^--steps: the lab trains 1 to {MAX_STEPS:,} steps"):
        Lab(LabSettings(steps=MAX_STEPS + 1))
    assert labs_on_disk(temporary_folders) == []


def test_a_tick_is_bounded_too(lab):
    with pytest.raises(GanforgeError, match="^steps per tick: 1 to 200, got 500"):
        lab.advance(500)
    assert lab.step == 0


def test_impossible_settings_are_refused_naming_the_flag_and_leave_no_folder(temporary_folders):
    with pytest.raises(GanforgeError, match="^--g-loss"):
        Lab(LabSettings(loss="hinge", g_loss="saturating"))
    with pytest.raises(GanforgeError, match="^--lr-d: must be a positive learning rate"):
        Lab(LabSettings(lr_d=0.0))
    with pytest.raises(GanforgeError, match="^--unroll: and --feature-matching"):
        Lab(LabSettings(unroll=2, feature_matching=True))
    with pytest.raises(GanforgeError, match="^--unroll: 0 \\(off\\) to 10 in the lab"):
        Lab(LabSettings(unroll=11))
    with pytest.raises(GanforgeError, match="^--data: the lab trains on ring8"):
        Lab(LabSettings(data="mnist"))
    assert labs_on_disk(temporary_folders) == []


def test_the_controls_values_are_read_as_numbers():
    settings = LabSettings.from_controls(
        "ring8",
        "bce",
        "saturating",
        "sgd",
        0.002,
        0.001,
        "cosine",
        2.0,
        True,
        False,
        3.0,
        0.0,
        300.0,
        7.0,
    )
    assert settings == LabSettings(
        g_loss="saturating",
        optimizer="sgd",
        lr_g=0.002,
        lr_decay="cosine",
        pack=2,
        minibatch_std=True,
        unroll=3,
        doctor_warmup=0,
        steps=300,
        seed=7,
    )
    values = ["ring8", "bce", "non-saturating", "adam", None, 1e-3, "none", 1, False, False, 0, 0]
    values += [300, 0]
    with pytest.raises(GanforgeError, match="^--lr-g: give a number"):
        LabSettings.from_controls(*values)
    values[4], values[12] = 1e-3, 300.5
    with pytest.raises(GanforgeError, match="^--steps: must be a whole number"):
        LabSettings.from_controls(*values)


def test_a_provoked_collapse_shows_as_a_mode_collapse_event(monkeypatch):
    """G made to map all noise to one point (as test_points_lab does): after the warm-up (0
    here) and the doctor's patience (5 records of 25 steps), mode_collapse with its remedies."""
    forward = MLPGenerator.forward
    monkeypatch.setattr(MLPGenerator, "forward", lambda self, z: forward(self, z * 0))
    lab = Lab(LabSettings(**SMALL))
    try:
        assert lab.events() == []
        lab.advance(125)
        collapses = [e for e in lab.events() if e["event"] == "mode_collapse"]
        assert [e["step"] for e in collapses] == [125]
        assert collapses[0]["remedies"][0] == "--pack 2"
        assert "--minibatch-std" in collapses[0]["remedies"]
        text = describe_events(lab.events())
        assert "step 125: mode\\_collapse" in text and "Try:" in text and "pack 2" in text
        assert "0 of the 8 modes" in text.replace("\\", "")
        curves = draw_curves(lab.records(), lab.events())
        assert curves.ndim == 3 and curves.dtype == np.uint8
    finally:
        lab.close()


def test_closing_stops_training_and_removes_the_folder(temporary_folders):
    lab = Lab(LabSettings(**SMALL))
    folder = lab.folder
    assert labs_on_disk(temporary_folders) == [folder] and (folder / "run" / "train.lock").exists()
    lab.close()
    lab.close()  # twice is fine
    assert not folder.exists()
    with pytest.raises(GanforgeError, match="^this page's training was closed: press Reset"):
        lab.advance(1)


def test_sessions_one_lab_each_replaced_on_reset_closed_with_the_page(temporary_folders):
    sessions = LabSessions(limit=2)
    first = sessions.start("page-a", LabSettings(**SMALL))
    first.advance(3)
    assert sessions.get("page-a") is first and sessions.get("page-b") is None
    again = sessions.start("page-a", LabSettings(**SMALL))  # Reset: a new training
    assert first.closed and not first.folder.exists() and again.step == 0
    other = sessions.start("page-b", LabSettings(**SMALL))
    with pytest.raises(GanforgeError, match="^lab: 2 trainings are running on this server"):
        sessions.start("page-c", LabSettings(**SMALL))
    sessions.close("page-a")  # the page went away (Gradio's unload)
    assert again.closed and sessions.get("page-a") is None and len(sessions) == 1
    sessions.close("page-a")
    sessions.close_all()
    assert other.closed and len(sessions) == 0
    assert labs_on_disk(temporary_folders) == []


def test_an_idle_lab_is_closed():
    sessions = LabSessions(idle_seconds=0.0)
    lab = sessions.start("page", LabSettings(**SMALL))
    lab.touched -= 1.0
    assert sessions.get("page") is None and lab.closed


def test_a_lab_trains_from_a_worker_thread_and_leaves_signals_alone(lab):
    """Gradio runs handlers in worker threads: the Trainer's steps must work there, and the
    server's Ctrl-C handler stays its own."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    failures = []

    def tick():
        try:
            lab.advance(10)
            lab.frame()
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    workers = [threading.Thread(target=tick) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == [] and lab.step == 20
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers


def test_the_status_line():
    assert describe_progress(150, 5000, playing=False) == "**Step 150** of 5,000 · paused"
    assert "playing" in describe_progress(150, 5000, playing=True)
    assert "press Reset" in describe_progress(5000, 5000, playing=False)
    assert "apply from Reset" in describe_progress(1, 10, playing=False, changed=True)

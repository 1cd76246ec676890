"""`ganforge doctor RUN`: a run explained in prose from its folder alone — the events in the
order they first came, the run's own options that likely caused them, and what to try first;
and the doctor naming those causes in its events as they fire."""

from __future__ import annotations

import json

import pytest

import ganforge
from ganforge import TrainConfig
from ganforge.cli import main
from ganforge.models.mlp import MLPGenerator
from ganforge.training.doctor.causes import likely_causes
from ganforge.training.doctor.detectors import warmup_steps
from tiny import TINY_POINTS


def write_run(folder, events=(), records=(), **options):
    """A run folder by hand: config.json of `options`, events.jsonl, metrics.jsonl."""
    folder.mkdir()
    config = TrainConfig(model="mlp", data="ring8", point_dims=2, **options)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def collapse(step, captured=3):
    return {
        "step": step,
        "event": "mode_collapse",
        "evidence": {"explanation": f"only {captured} of the 8 modes"},
        "remedies": ["--pack 2", "--minibatch-std", "--gp 10"],
    }


def explain(folder, capsys) -> str:
    assert main(["doctor", str(folder)]) == 0
    return capsys.readouterr().out


def test_a_saturating_loss_is_named_as_the_cause_of_collapse_and_fixed_first(tmp_path, capsys):
    run = write_run(
        tmp_path / "run",
        events=[collapse(600), collapse(900, captured=2)],
        records=[{"step": 1000, "d_accuracy": 0.99, "modes_captured": 2, "num_modes": 8}],
        g_loss="saturating",
    )
    text = explain(run, capsys)
    assert "mode_collapse from step 600 to 900 (2 reports)" in text
    assert "only 2 of the 8 modes" in text  # the latest evidence
    assert "--g-loss saturating: G minimises log(1 - D(G(z)))" in text
    try_first = text.split("What to try, first things first")[1].splitlines()[1].strip()
    assert try_first == "--g-loss non-saturating"
    assert text.index("--pack 2") < text.index("--gp 10")  # then the events' remedies, in order
    assert "D right 99% of the time, 2 modes captured" in text
    evaluated = [{"step": 10, "d_accuracy": 0.75}, {"step": 10, "eval_fid": 50.0}]
    text = explain(write_run(tmp_path / "evaluated", records=evaluated), capsys)
    assert "At the end (step 10): D right 75% of the time" in text  # not the eval's record
    one = write_run(tmp_path / "one", records=[{"step": 10, "modes_captured": 1}])
    assert "1 mode captured" in explain(one, capsys)  # agrees with its number
    assert main(["doctor", str(one), "--lang", "es"]) == 0
    assert "1 modo capturado" in capsys.readouterr().out


def test_causes_follow_the_options_and_the_events_seen(tmp_path, capsys):
    events = [
        {"step": 700, "event": "d_overpowering", "evidence": {}, "remedies": ["--lr-d 0.0001"]}
    ]
    text = explain(write_run(tmp_path / "a", events, d_steps=3, lr_d=1e-3, lr_g=2e-4), capsys)
    assert "--d-steps 3: D trains 3 times per G step" in text
    assert "--lr-d 0.001 is above --lr-g 0.0002" in text
    assert "--lr-d 0.0005" in text  # half of this run's --lr-d
    assert "saturating" not in text and "--pack" not in text  # options or events absent
    text = explain(write_run(tmp_path / "b", events, pack=2), capsys)
    assert "Likely causes" not in text  # the defaults cause nothing; pack answers no D event


def test_a_quiet_run_says_so(tmp_path, capsys):
    text = explain(write_run(tmp_path / "quiet", records=[{"step": 5}, {"step": 10}]), capsys)
    assert "The doctor saw no problem in 2 records." in text
    assert "What to try" not in text
    text = explain(write_run(tmp_path / "off", doctor=False), capsys)
    assert "it was off: --no-doctor" in text


# ---- the same causes, named by the doctor as its events fire ------------------------------


def test_the_doctor_names_the_likely_cause_as_the_event_fires(tmp_path, monkeypatch):
    forward = MLPGenerator.forward
    monkeypatch.setattr(MLPGenerator, "forward", lambda self, z: forward(self, z * 0))
    options = {**TINY_POINTS, "steps": 10, "log_every": 5}
    options.update(doctor_warmup=0, doctor_patience=2)
    run = ganforge.train(**options, g_loss="saturating", out=str(tmp_path / "saturating"))
    event = next(e for e in run.events() if e["event"] == "mode_collapse")
    assert event["evidence"]["likely_cause"].startswith("--g-loss saturating: G minimises")
    causes_first = ["--g-loss non-saturating", "--pack 2", "--lr-decay cosine"]
    assert event["remedies"][:4] == [*causes_first, "--minibatch-std"]
    run = ganforge.train(**options, pack=2, lr_decay="cosine", out=str(tmp_path / "packed"))
    event = next(e for e in run.events() if e["event"] == "mode_collapse")
    assert "likely_cause" not in event["evidence"]  # nothing in its options explains it
    assert "--pack 2" not in event["remedies"]


@pytest.mark.parametrize(
    ("model", "fixes"),
    [
        ("dcgan", ["--g-loss non-saturating", "--d-steps 1", "--pack 2"]),
        ("pix2pix", ["--g-loss non-saturating", "--d-steps 1"]),  # its D takes no packs
    ],
)
def test_a_cause_counts_only_where_the_model_takes_its_fix(model, fixes):
    config = TrainConfig(model=model, resolution=32, channels=1, g_loss="saturating", d_steps=2)
    assert [cause.flags(config) for cause in likely_causes(config, ("mode_collapse",))] == fixes
    assert likely_causes(config, ("stalled",)) == []


def test_a_constant_rate_is_a_cause_of_collapse_on_points_only():
    points = TrainConfig(model="mlp", data="ring8", point_dims=2)
    flags = [cause.flags(points) for cause in likely_causes(points, ("mode_collapse",))]
    assert flags == ["--pack 2", "--lr-decay cosine"]
    decayed = points.replace(lr_decay="linear", minibatch_std=True)
    assert likely_causes(decayed, ("mode_collapse",)) == []
    images = TrainConfig(model="mlp", resolution=28, channels=1)
    assert "--lr-decay cosine" not in [
        c.flags(images) for c in likely_causes(images, ("mode_collapse",))
    ]


# ---- the warm-up scales with the run ----------------------------------------------------------


def test_the_warmup_is_500_steps_or_a_fifth_of_the_run_unless_given():
    assert warmup_steps(TrainConfig(steps=300)) == 60
    assert warmup_steps(TrainConfig()) == 300  # the default 1,500 steps
    assert warmup_steps(TrainConfig(steps=10_000)) == 500
    assert warmup_steps(TrainConfig(steps=300, doctor_warmup=7)) == 7  # given: as given
    assert warmup_steps(TrainConfig(steps=10_000, doctor_warmup=2_000)) == 2_000


def test_a_short_collapsed_run_is_diagnosed(tmp_path, monkeypatch):
    forward = MLPGenerator.forward
    monkeypatch.setattr(MLPGenerator, "forward", lambda self, z: forward(self, z * 0))
    run = ganforge.train(
        **{**TINY_POINTS, "steps": 50, "log_every": 5},
        doctor_patience=2,
        out=str(tmp_path / "short"),
    )
    events = [e["step"] for e in run.events() if e["event"] == "mode_collapse"]
    assert events[0] == 15  # judged from step 10 (a fifth of 50): records 10 and 15


def test_large_learning_rates_are_a_cause_relative_to_the_models_own_defaults():
    from ganforge.models import model_defaults

    def reasons(**options):
        config = TrainConfig(model=options.pop("model", "mlp"), **options)
        return [cause.reason(config) for cause in likely_causes(config, {"exploding"})]

    shared = TrainConfig()
    assert not any("learning rates" in r for r in reasons())  # the defaults are not a cause
    (large,) = [r for r in reasons(lr_g=shared.lr_g * 5) if "learning rates" in r]
    assert large.startswith(f"learning rates up to {shared.lr_g * 5:g}, 5x mlp's defaults")
    assert "for adam on a GAN" in large
    own = model_defaults("r3gan")  # r3gan's own rates are half the shared ones
    r3gan = {"model": "r3gan", "resolution": 32, "channels": 1}
    assert not any("learning rates" in r for r in reasons(**r3gan, **own))
    (large,) = [r for r in reasons(**r3gan, lr_g=own["lr_g"] * 3) if "learning rates" in r]
    assert "3x r3gan's defaults" in large
    assert not any("learning rates" in r for r in reasons(optimizer="sgd", lr_g=0.05))


def test_an_event_written_in_english_is_read_in_spanish(tmp_path, capsys):
    """The doctor keeps each explanation's English template and values beside its text:
    `ganforge doctor RUN --lang es` and the Spanish report say it again in Spanish; an event
    written before templates were kept is read as written."""
    from ganforge.i18n import _, set_language
    from ganforge.training.doctor.detectors import DOverpowering
    from ganforge.training.doctor.events import Event

    set_language("en")
    config = TrainConfig(model="mlp", data="ring8", point_dims=2, doctor_patience=1)
    detector = DOverpowering(config)
    evidence = None
    for step in range(0, 10 * warmup_steps(config), 50):
        evidence = detector.examine({"step": step, "d_accuracy": 1.0}) or evidence
    assert evidence is not None and "D has been right about 100.0%" in evidence["explanation"]
    line = json.loads(Event(700, "d_overpowering", evidence, ["--lr-d 0.0001"]).to_json())
    run = write_run(tmp_path / "run", events=[line])
    set_language("es")
    spanish = _(evidence["said"]["template"]).format(**evidence["said"]["values"])
    set_language("en")
    assert spanish != evidence["explanation"] and "100,0" in spanish  # its own words, numbers
    assert main(["doctor", str(run), "--lang", "es"]) == 0
    text = capsys.readouterr().out
    assert spanish in text and evidence["explanation"] not in text
    assert main(["report", str(run), "--lang", "es"]) == 0
    report = (run / "report.html").read_text(encoding="utf-8")
    assert spanish.split(":")[0] in report and "said =" not in report
    old = write_run(tmp_path / "old", events=[collapse(600)])  # no template: as written
    assert main(["doctor", str(old), "--lang", "es"]) == 0
    assert "only 3 of the 8 modes" in capsys.readouterr().out

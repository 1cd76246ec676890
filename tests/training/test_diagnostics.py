"""The doctor: signals in the records, each detector on synthetic records, provoked failures
on tiny real runs, NaN rollback, and events.jsonl written resume-exactly."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.cli import build_parser
from ganforge.models import build_model
from ganforge.models.dcgan import DCGANGenerator
from ganforge.models.family import (
    AUTOENCODER,
    CLASS_CONDITIONAL,
    PAIRED_TRANSLATOR,
    UNCONDITIONAL,
)
from ganforge.models.mlp import MLPGenerator
from ganforge.training import doctor as dx
from ganforge.training.checkpoint import save_checkpoint

# Judge from the first record: the synthetic sequences below start at step 0.
JUDGE_AT_ONCE = TrainConfig(doctor_warmup=0)
EVENT_FIELDS = ["step", "event", "evidence", "remedies"]


def records(key: str, values: list, start: int = 0, **others) -> list[dict]:
    return [{"step": start + 50 * i, key: v, **others} for i, v in enumerate(values)]


def firing(detector: dx.Detector, sequence: list[dict]) -> list[bool]:
    """Whether `detector` fires on each record (False where it does not read the record)."""
    return [detector.reads(r) and detector.examine(r) is not None for r in sequence]


def kinds(run) -> list[str]:
    return [e["event"] for e in run.events()]


@pytest.fixture
def doctor(tmp_path, digits):
    """A Doctor of a tiny mlp family with `**overrides` thresholds, writing to tmp_path."""

    def _doctor(**overrides) -> dx.Doctor:
        config = TrainConfig(model="mlp", width=8, z_dim=8, data="digits", **overrides)
        family = build_model(config, 28, 1)
        return dx.Doctor(config, family, digits, tmp_path / "events.jsonl", torch.device("cpu"))

    return _doctor


# ---- detectors on synthetic records ------------------------------------------------------------


def test_exploding_fires_on_a_non_finite_loss_even_during_warmup():
    detector = dx.Exploding(TrainConfig())  # warmup 500
    sequence = records("loss_d", [0.7, math.nan, 0.7]) + records("grad_norm_generator", [math.inf])
    assert firing(detector, sequence) == [False, True, False, True]


def test_exploding_fires_on_a_gradient_norm_over_its_running_median_times_the_factor():
    detector = dx.Exploding(JUDGE_AT_ONCE)  # factor 20
    sequence = records("grad_norm_discriminator", [10, 10, 10, 10, 10, 199, 201, 10, 1000])
    assert firing(detector, sequence) == [False] * 6 + [True, False, True]


def test_exploding_needs_a_history_before_judging_a_gradient_norm():
    detector = dx.Exploding(JUDGE_AT_ONCE)
    assert not any(firing(detector, records("grad_norm_generator", [1, 1, 1, 1, 1000])))


def test_exploding_fires_on_a_weight_norm_far_above_its_initial_value():
    detector = dx.Exploding(JUDGE_AT_ONCE, {"weight_norm_generator": 2.0})
    sequence = records("weight_norm_generator", [2.0, 39.0, 41.0])
    assert firing(detector, sequence) == [False, False, True]
    evidence = detector.examine(sequence[2])
    assert evidence["factor"] == pytest.approx(20.5) and evidence["explanation"]


def test_vanishing_needs_a_collapsed_g_gradient_and_a_winning_d():
    def run(last_norm, accuracy):
        detector = dx.Vanishing(JUDGE_AT_ONCE)  # factor 0.05, accuracy 0.99
        sequence = [
            {"step": 50 * i, "grad_norm_generator": 1.0, "d_accuracy": 0.9} for i in range(6)
        ]
        sequence.append({"step": 300, "grad_norm_generator": last_norm, "d_accuracy": accuracy})
        return firing(detector, sequence)

    assert run(0.04, 0.995) == [False] * 6 + [True]
    assert not any(run(0.04, 0.98))  # G's gradient is small, but D does not dominate
    assert not any(run(0.06, 1.0))  # D dominates, but G still gets a gradient


def test_d_overpowering_needs_patience_records_in_a_row():
    detector = dx.DOverpowering(JUDGE_AT_ONCE)  # 0.98, 5 records
    accuracies = [0.98, 0.99, 1.0, 0.99, 0.97, 0.99, 0.99, 0.99, 0.99, 0.98, 0.99]
    assert firing(detector, records("d_accuracy", accuracies)) == [False] * 9 + [True, True]


def test_d_overpowering_waits_for_the_warmup():
    detector = dx.DOverpowering(TrainConfig(doctor_warmup=500))
    assert not any(firing(detector, records("d_accuracy", [1.0] * 10)))  # steps 0..450


def test_g_overpowering_is_a_fooled_d_rating_fakes_high():
    def run(accuracy, d_fake):
        detector = dx.GOverpowering(JUDGE_AT_ONCE)  # accuracy <= 0.5, d_fake >= 0.6, 5 records
        return firing(detector, records("d_accuracy", [accuracy] * 5, d_fake=d_fake))

    assert run(0.45, 0.65) == [False] * 4 + [True]
    assert run(0.5, 0.6)[-1]
    assert not any(run(0.5, 0.5))  # D at chance with D(G(z)) = 0.5: the equilibrium, not a problem
    assert not any(run(0.55, 0.7))


def test_mode_collapse_compares_the_diversity_with_the_real_images():
    def run(ratio):
        detector = dx.ModeCollapse(JUDGE_AT_ONCE)  # 0.5, 5 records
        return firing(detector, records("diversity", [4.0 * ratio] * 5, diversity_real=4.0))

    assert run(0.49) == [False] * 4 + [True]
    assert not any(run(0.51))


def test_mode_collapse_from_an_evaluation_of_the_class_histogram():
    detector = dx.ClassCollapse(JUDGE_AT_ONCE)  # KL >= 0.5 nats
    evals = [
        {"step": 100, "eval_kl_to_uniform": 0.49, "eval_best": True},
        {"step": 200, "eval_kl_to_uniform": 1.6, "eval_classes_found": 3, "eval_num_classes": 10},
        {"step": 200, "loss_d": 0.7},  # a training record says nothing about classes
        {"step": 300, "eval_kl_to_uniform": 0.5},  # the threshold itself counts
        {"step": 400, "eval_kl_to_uniform": 0.51},
    ]
    assert firing(detector, evals) == [False, True, False, True, True]
    assert "3 of 10 classes" in detector.examine(evals[1])["explanation"]


def test_oscillation_is_a_swing_growing_around_the_trend():
    def run(values):
        return firing(dx.Oscillation(JUDGE_AT_ONCE), records("loss_d", values))  # window 20

    calm, wild = (
        [1.0 + 0.02 * (-1) ** i for i in range(10)],
        [1.0 + 0.3 * (-1) ** i for i in range(10)],
    )
    assert run(calm + wild)[-1]
    assert not any(run(calm + calm))
    assert not any(run(wild + wild))  # wide, but not widening
    ramp = [0.5 + 0.1 * i + 0.02 * (-1) ** i for i in range(20)]
    assert not any(run(ramp))  # a trend is not an oscillation
    growing_noise = [1.0 + 0.02 * (-1) ** i for i in range(10)] + [
        1.0 + 0.06 * (-1) ** i for i in range(10)
    ]
    assert not any(run(growing_noise))  # 3x wider, but still small against the loss itself
    # a loss that stood still and then swings: said in words, not as "infx wider"
    detector = dx.Oscillation(JUDGE_AT_ONCE)
    found = [detector.examine(r) for r in records("loss_d", [1.0] * 10 + wild)]
    explanation = found[-1]["explanation"]
    assert "stood still" in explanation and "inf" not in explanation


def test_stalled_counts_evaluations_without_improvement_and_ignores_training_records():
    detector = dx.Stalled(JUDGE_AT_ONCE)  # 5 evaluations
    bests = [True, False, False, False, False, True, False, False, False, False, False]
    evals = [{"step": 100 * (i + 1), "eval_fid": 50.0, "eval_best": b} for i, b in enumerate(bests)]
    assert firing(detector, evals) == [False] * 10 + [True]
    assert detector.examine(evals[-1])["best_step"] == 600
    assert not any(firing(dx.Stalled(JUDGE_AT_ONCE), records("loss_d", [0.7] * 50)))


def test_every_remedy_is_a_real_train_flag():
    parser = build_parser()
    train = next(a for a in parser._actions if a.choices and "train" in a.choices).choices["train"]
    flags = {option for action in train._actions for option in action.option_strings}
    config = TrainConfig(ema_decay=0.0, g_loss="saturating", d_steps=2)
    remedies = [r for d in dx.build_detectors(config) for r in d.remedies()]
    assert len(remedies) > 20
    for remedy in remedies:
        assert remedy.split()[0] in flags, remedy
        parser.parse_args(["train", *remedy.split()])  # and its value parses


# ---- the doctor: events, throttling, state -------------------------------------------------------


def test_an_event_is_written_when_it_starts_then_every_repeat_records(doctor, tmp_path):
    doc = doctor(doctor_warmup=0, doctor_patience=1, doctor_repeat=3)
    accuracies = [1.0] * 8 + [0.8, 1.0]
    for record in records("d_accuracy", accuracies, d_fake=0.1, d_real=0.9):
        doc.observe(record)
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    events = [json.loads(line, parse_constant=pytest.fail) for line in lines]
    assert [(e["step"], e["event"]) for e in events] == [
        (0, "d_overpowering"),
        (150, "d_overpowering"),
        (300, "d_overpowering"),
        (450, "d_overpowering"),  # stopped at 400, started again
    ]
    for event in events:
        assert list(event) == EVENT_FIELDS
        assert isinstance(event["evidence"]["explanation"], str)
        assert event["evidence"]["d_accuracy"] == 1.0
        assert "--lr-d 0.0001" in event["remedies"]


def test_events_are_plain_json_even_with_non_finite_evidence(doctor, tmp_path):
    doctor().observe({"step": 5, "loss_d": math.nan, "loss_g": 0.7})
    (line,) = (tmp_path / "events.jsonl").read_text().splitlines()
    event = json.loads(line, parse_constant=pytest.fail)  # no NaN literal in the file
    assert event["event"] == "exploding" and event["evidence"]["loss_d"] == "nan"


def test_events_are_printed_once_per_kind(doctor, capsys):
    doc = doctor(doctor_warmup=0, doctor_patience=1, doctor_repeat=1)
    for record in records("d_accuracy", [1.0] * 3, d_fake=0.1):
        doc.observe(record)
    err = capsys.readouterr().err
    assert err.count("d_overpowering") == 1 and "Try: --lr-d" in err


def test_doctor_state_round_trips_and_malformed_state_is_refused(doctor):
    doc = doctor(doctor_warmup=0)
    for record in records("grad_norm_generator", [1.0, 2.0, 3.0], d_accuracy=1.0):
        doc.observe(record)
    doc.rollbacks = 2
    saved = json.loads(json.dumps(doc.state_dict()))
    other = doctor(doctor_warmup=0)
    other.load_state_dict(saved)
    assert other.state_dict() == doc.state_dict() and other.rollbacks == 2
    other.load_state_dict(None)
    assert other.rollbacks == 0 and other.state_dict()["detectors"]["exploding"]["state"] == {}
    saved["detectors"]["d_overpowering"]["state"]["streak"] = "many"
    with pytest.raises(GanforgeError, match="doctor.detectors.d_overpowering.state"):
        other.load_state_dict(saved)
    with pytest.raises(GanforgeError, match="doctor.rollbacks"):
        other.load_state_dict({"rollbacks": -1, "detectors": {}})


def test_check_finds_the_first_non_finite_loss_without_a_sync_per_step(doctor):
    doc = doctor()
    networks = build_model(TrainConfig(model="mlp", width=8, z_dim=8), 28, 1).networks
    for step in (1, 2):
        doc.watch("discriminator", torch.tensor(0.7), step)
    assert doc.check(networks) is None
    doc.watch("discriminator", torch.tensor(0.7), 3)
    doc.watch("generator", torch.tensor(math.inf), 4)
    doc.watch("generator", torch.tensor(math.nan), 5)
    assert doc.check(networks) == "the generator loss was NaN or infinite at step 4"
    assert doc.check(networks) is None  # each check covers the steps since the last
    with torch.no_grad():
        next(networks["discriminator"].parameters())[0, 0] = math.nan
    assert doc.check(networks) == "the discriminator's weights are no longer finite"


def test_the_diversity_probe_sees_collapse_and_leaves_rng_and_batchnorm_alone(digits):
    config = TrainConfig(model="dcgan", width=8, z_dim=8)
    family = build_model(config, 28, 1)
    rng = torch.get_rng_state()
    probe = dx.DiversityProbe(family, digits, seed=0, device=torch.device("cpu"))
    generator = family.networks["generator"]
    buffers = [b.clone() for b in generator.buffers()]
    assert probe.real > 1.0
    assert probe.diversity(generator) > 0
    assert generator.training and all(
        torch.equal(a, b) for a, b in zip(buffers, generator.buffers())
    )
    assert torch.equal(torch.get_rng_state(), rng)
    same = probe.noise[:1].expand_as(probe.noise)
    assert probe.diversity_of(generator.eval()(same)).item() == pytest.approx(0.0, abs=1e-5)


def test_a_checkpoint_with_a_non_finite_tensor_is_refused(tmp_path):
    path = tmp_path / "step_0000001.safetensors"
    tensors = {"networks.generator.w": torch.tensor([1.0, math.nan])}
    with pytest.raises(GanforgeError, match="networks.generator.w.*NaN or infinity"):
        save_checkpoint(path, tensors, {"step": 1})
    assert not path.exists() and not list(tmp_path.iterdir())


# ---- tiny real runs ----------------------------------------------------------------------------


def test_records_carry_the_signals(tiny_train):
    run = tiny_train(steps=10, diagnose_layers=True)
    generator = build_model(run.config, 28, 1).networks["generator"]
    for record in run.metrics():
        for key in ("weight_norm_generator", "weight_norm_discriminator", "diversity"):
            assert record[key] > 0
        assert record["diversity_real"] == run.metrics()[0]["diversity_real"] > 0
        layers = [f"grad_norm_generator.{name}" for name, _ in generator.named_parameters()]
        assert all(key in record for key in layers)
        total = math.sqrt(sum(record[key] ** 2 for key in layers))
        assert total == pytest.approx(record["grad_norm_generator"], rel=1e-4)
    assert not (run.path / "events.jsonl").exists()


def test_the_doctor_does_not_change_the_training(tiny_train, without_wall_clock):
    watched = tiny_train("watched", steps=12, log_every=3)
    plain = tiny_train("plain", steps=12, log_every=3, doctor=False)
    a = load_tensors(watched.checkpoints[-1][1])
    b = load_tensors(plain.checkpoints[-1][1])
    assert all(torch.equal(a[k], b[k]) for k in b)
    signals = ("weight_norm_", "diversity")
    trimmed = [
        {k: v for k, v in r.items() if not k.startswith(signals)}
        for r in without_wall_clock(watched.metrics())
    ]
    assert trimmed == without_wall_clock(plain.metrics())
    assert "diversity" not in plain.metrics()[0]


def load_tensors(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def checkpoint_meta(path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["ganforge"])


def test_a_healthy_tiny_run_raises_no_event(tiny_train):
    run = tiny_train(
        model="dcgan",
        steps=200,
        log_every=10,
        lr_g=1e-3,
        lr_d=5e-4,
        doctor_warmup=100,
    )
    assert run.events() == []
    assert run.metrics()[-1]["diversity"] > 0.5 * run.metrics()[-1]["diversity_real"]


def test_a_huge_learning_rate_is_exploding(tiny_train):
    run = tiny_train(steps=20, lr_g=50.0, lr_d=50.0, doctor_warmup=0)
    assert "exploding" in kinds(run)
    event = run.events()[0]
    assert event["event"] == "exploding" and event["step"] == 5
    assert event["evidence"]["factor"] > 20 and "--spectral-norm" in event["remedies"]


def test_an_overpowering_discriminator(tiny_train):
    run = tiny_train(steps=60, d_steps=5, lr_d=1e-2, lr_g=1e-5, doctor_warmup=20)
    assert "d_overpowering" in kinds(run)
    event = next(e for e in run.events() if e["event"] == "d_overpowering")
    assert event["step"] == 40  # records 20..40 all at accuracy >= 0.98
    assert event["evidence"]["d_accuracy"] >= 0.98 and event["evidence"]["records"] == 5


def test_a_generator_that_ignores_its_noise_is_mode_collapse(tiny_train, monkeypatch):
    forward = MLPGenerator.forward
    monkeypatch.setattr(MLPGenerator, "forward", lambda self, z: forward(self, z * 0))
    run = tiny_train(steps=30, doctor_warmup=0)
    assert run.metrics()[-1]["diversity"] == 0
    event = next(e for e in run.events() if e["event"] == "mode_collapse")
    assert event["step"] == 25 and event["evidence"]["ratio"] == 0


@pytest.mark.parametrize(("model", "judged"), [("dcgan", True), ("vae", False)])
def test_only_a_gan_drawing_from_noise_is_judged_for_collapse(
    tiny_train, monkeypatch, model, judged
):
    """A VAE's samples are blurred (about 45% as varied as real digits, with no collapse: once
    read as mode collapse, with GAN flags it refuses as remedies); its diversity is recorded,
    not judged. The same generator that ignores its noise in a dcgan is judged."""
    forward = DCGANGenerator.forward
    monkeypatch.setattr(DCGANGenerator, "forward", lambda self, z, *a: forward(self, z * 0, *a))
    run = tiny_train(model=model, steps=30, doctor_warmup=0)
    assert run.metrics()[-1]["diversity"] == 0
    assert ("mode_collapse" in kinds(run)) == judged


@pytest.mark.parametrize(
    ("kind", "judged"),
    [
        (UNCONDITIONAL, True),
        (CLASS_CONDITIONAL, True),
        (AUTOENCODER, False),
        (PAIRED_TRANSLATOR, False),
    ],
)
def test_the_family_kind_says_whether_diversity_is_judged(kind, judged):
    detectors = dx.build_detectors(JUDGE_AT_ONCE, kind=kind)
    detector = next(d for d in detectors if d.name == "mode_collapse")
    assert any(firing(detector, records("diversity", [0.0] * 5, diversity_real=4.0))) == judged


def test_a_metric_that_stops_improving_is_stalled(tiny_train):
    """A generator whose learning rate is too small to move any float32 weight gives the same
    FID at every evaluation: the first is the best, and after --doctor-stall-evals more the run
    is stalled. A detector on real evaluations, deterministic by construction."""
    run = tiny_train(steps=20, lr_g=1e-30, eval_every=5, eval_n=64, doctor_stall_evals=2)
    evaluations = [r for r in run.metrics() if "eval_fid" in r]
    assert [r["eval_best"] for r in evaluations] == [True, False, False, False]
    assert len({r["eval_fid"] for r in evaluations}) == 1
    (event,) = run.events()  # at 20 it is still firing, and repeats only every 10 records
    assert (event["step"], event["event"]) == (15, "stalled")
    evidence = event["evidence"]
    assert evidence["evaluations_without_improvement"] == 2 and evidence["best_step"] == 5
    assert evidence["eval_fid"] == evaluations[-1]["eval_fid"]
    assert "--early-stop-patience 2" in event["remedies"]


def test_a_nan_step_is_rolled_back_with_smaller_learning_rates(tiny_train, nan_generator_loss):
    nan_generator_loss({7})
    run = tiny_train(steps=20, log_every=5, checkpoint_every=10)
    (event,) = run.events()
    assert event["event"] == "rollback" and event["step"] == 10  # found at the step-10 record
    evidence = event["evidence"]
    assert evidence["returned_to_step"] == 5 and evidence["rollbacks"] == 1
    assert "generator loss was NaN or infinite at step 7" in evidence["explanation"]
    assert evidence["lr_generator"] == pytest.approx(0.5 * run.config.lr_g)
    assert "--lr-g 0.0002" in event["remedies"]
    # training went on to the end with finite weights and halved learning rates
    assert [r["step"] for r in run.metrics()] == [5, 10, 15, 20]
    assert all(math.isfinite(v) for r in run.metrics() for v in r.values())
    tensors = load_tensors(run.checkpoints[-1][1])
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    meta = checkpoint_meta(run.checkpoints[-1][1])
    lr = {name: state["param_groups"][0]["lr"] for name, state in meta["optimizers"].items()}
    assert lr == pytest.approx({"generator": 2e-4, "discriminator": 1e-4})
    assert meta["doctor"]["rollbacks"] == 1


def test_rollbacks_stop_after_max_rollbacks_with_a_clear_error(
    tiny_train, nan_generator_loss, tmp_path
):
    nan_generator_loss("all")
    with pytest.raises(GanforgeError, match=r"training diverged: .* after 2 rollbacks"):
        tiny_train(steps=20, max_rollbacks=2, checkpoint_every=5)
    run = ganforge.Run(tmp_path / "run")
    assert kinds(run) == ["rollback", "rollback"]
    assert [e["evidence"]["rollbacks"] for e in run.events()] == [1, 2]
    # each rollback lowers the rates again, also when it returns to the same snapshot
    assert [e["evidence"]["lr_generator"] for e in run.events()] == pytest.approx(
        [0.5 * run.config.lr_g, 0.25 * run.config.lr_g]
    )
    assert run.checkpoints == []  # no NaN model was written


def test_without_the_doctor_a_nan_model_is_never_saved(tiny_train, nan_generator_loss, tmp_path):
    nan_generator_loss({3})
    with pytest.raises(GanforgeError, match="not writing checkpoint .* NaN or infinity"):
        tiny_train(steps=10, doctor=False, checkpoint_every=5)
    assert ganforge.Run(tmp_path / "run").checkpoints == []


def test_events_are_resume_exact(tiny_train, without_wall_clock):
    """Detector state travels in checkpoints, and events past the checkpoint a run resumes
    from are dropped and written again: split == straight, with events on both sides."""
    options = {
        "d_steps": 5,
        "lr_d": 1e-2,
        "lr_g": 1e-5,
        "doctor_warmup": 10,
        "doctor_patience": 2,
        "doctor_repeat": 3,
        "checkpoint_every": 25,
    }
    straight = tiny_train("straight", steps=60, **options)
    split = tiny_train("split", steps=45, **options)  # checkpoints at 25 and 45
    split.checkpoints[-1][1].unlink()  # ...resume from 25: events 30..45 are stale
    assert max(e["step"] for e in split.events()) > 25
    resumed = ganforge.train(resume=split.path, steps=60)
    assert len(straight.events()) >= 4 and min(e["step"] for e in straight.events()) < 25
    assert resumed.events() == straight.events()
    assert (resumed.path / "events.jsonl").read_bytes() == (
        straight.path / "events.jsonl"
    ).read_bytes()
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [
        ("nan_lr_factor", 1.0, "--nan-lr-factor"),
        ("doctor_window", 4, "--doctor-window"),
        ("doctor_d_accuracy", 1.5, "--doctor-d-accuracy"),
        ("max_rollbacks", -1, "--max-rollbacks"),
        ("doctor_explode_factor", 1.0, "--doctor-explode-factor"),
    ],
)
def test_bad_doctor_options_are_named(option, value, flag):
    with pytest.raises(GanforgeError, match=flag):
        TrainConfig(**{option: value}).validate()


def test_doctor_options_may_change_on_resume(tiny_train):
    run = tiny_train(steps=5)
    resumed = ganforge.train(resume=run.path, steps=10, doctor_d_accuracy=0.9, doctor=False)
    assert resumed.config.doctor_d_accuracy == 0.9 and resumed.config.doctor is False


def test_a_winning_d_against_a_saturating_g_loss_suggests_the_non_saturating_loss_first(doctor):
    """Course chapter 5: against a D that wins outright, the saturating loss gives G nothing to
    learn; the non-saturating loss is the remedy that worked, so it comes first."""
    saturating = dx.DOverpowering(doctor(g_loss="saturating").config)
    assert saturating.remedies()[0] == "--g-loss non-saturating"
    already = dx.DOverpowering(doctor().config)
    assert "--g-loss non-saturating" not in already.remedies()

"""The training loop: phase isolation (D frozen while G learns and vice versa), k D-steps,
the run folder it writes, logging, optimisers and the errors it raises before training."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge import GanforgeError, TrainConfig, losses
from ganforge.data import load_dataset, to_model_range
from ganforge.models import GANFamily, build_model, list_models, model_kind
from ganforge.sampling import generate
from ganforge.training import loop
from ganforge.training.loop import Trainer, only_trainable
from ganforge.training.optim import learning_rate, make_optimizer


def tiny_family(model: str, seed: int = 0):
    torch.manual_seed(seed)
    classes = 10 if model_kind(model).class_conditional else 0
    config = TrainConfig(model=model, width=8, z_dim=8, data="digits", num_classes=classes)
    family = build_model(config, 32 if model_kind(model).translator else 28, 1)
    family.networks.train()
    return config, family


# the models with a generator and a discriminator (a VAE trains one phase: tests/models/test_vae.py)
ADVERSARIAL_MODELS = [m for m in list_models() if "discriminator" in tiny_family(m)[1].networks]


def real_batch(digits, n=16, model="mlp"):
    if not model_kind(model).translator:
        return {"images": to_model_range(digits.images[:n]), "labels": digits.labels[:n]}
    pairs = load_dataset("mnist-mini-edges", resolution=32, split="test")  # a translator's
    return {
        "images": to_model_range(pairs.images[:n]),
        "sources": to_model_range(pairs.sources[:n]),
        "labels": pairs.labels[:n],
    }


def clone_params(module):
    return [p.detach().clone() for p in module.parameters()]


def run_phase(family, config, phase, batch):
    """One optimisation phase as the loop runs it: freeze the others, loss, backward, step."""
    optimizer = make_optimizer(config, family.networks[phase], learning_rate(config, family, phase))
    with only_trainable(family.networks, phase) as network:
        assert network is family.networks[phase]
        optimizer.zero_grad(set_to_none=True)
        loss, _ = family.phase_loss(phase, batch)
        loss.backward()
        optimizer.step()


# ---- phase isolation --------------------------------------------------------------------


@pytest.mark.parametrize("model", ADVERSARIAL_MODELS)
def test_generator_phase_leaves_discriminator_untouched(model, digits):
    config, family = tiny_family(model)
    generator, discriminator = family.networks["generator"], family.networks["discriminator"]
    d_before, g_before = clone_params(discriminator), clone_params(generator)

    run_phase(family, config, "generator", real_batch(digits, model=model))

    for before, after in zip(d_before, discriminator.parameters(), strict=True):
        assert torch.equal(before, after)  # bitwise unchanged
        assert after.grad is None  # no gradient was even accumulated into D
    assert any(not torch.equal(b, a) for b, a in zip(g_before, generator.parameters(), strict=True))
    assert all(p.grad is not None for p in generator.parameters())
    # the freeze is lifted after the phase
    assert all(p.requires_grad for p in family.networks.parameters())


@pytest.mark.parametrize("model", ADVERSARIAL_MODELS)
def test_discriminator_phase_leaves_generator_untouched(model, digits):
    config, family = tiny_family(model)
    generator, discriminator = family.networks["generator"], family.networks["discriminator"]
    d_before, g_before = clone_params(discriminator), clone_params(generator)

    run_phase(family, config, "discriminator", real_batch(digits, model=model))

    for before, after in zip(g_before, generator.parameters(), strict=True):
        assert torch.equal(before, after)
        assert after.grad is None
    d_after = list(discriminator.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(d_before, d_after, strict=True))
    assert all(p.grad is not None for p in discriminator.parameters())


def test_only_trainable_freezes_the_others_and_always_restores():
    _, family = tiny_family("mlp")
    with pytest.raises(RuntimeError):
        with only_trainable(family.networks, "generator"):
            assert all(p.requires_grad for p in family.networks["generator"].parameters())
            assert not any(p.requires_grad for p in family.networks["discriminator"].parameters())
            raise RuntimeError("boom")
    assert all(p.requires_grad for p in family.networks.parameters())


@pytest.mark.parametrize("model", ADVERSARIAL_MODELS)
def test_trainer_keeps_the_other_network_frozen_and_unchanged_in_each_phase(
    model, tmp_path, tiny_options, model_options
):
    """Inside the real loop: during G's phase D is frozen, and G's loss, backward and step leave
    D's weights and gradients exactly as they were (and the same for G during D's phase)."""
    options = {**tiny_options, **model_options(model), "model": model, "steps": 3, "d_steps": 2}
    config = TrainConfig.from_dict(options)
    trainer = Trainer(config, tmp_path / "run", resuming=False)
    networks = trainer.family.networks
    original_loss = trainer.family.phase_loss
    snapshots, checks = {}, []

    def state(name):
        return [
            (p.detach().clone(), None if p.grad is None else p.grad.clone())
            for p in networks[name].parameters()
        ]

    def phase_loss(phase, batch):
        other = "discriminator" if phase == "generator" else "generator"
        assert not any(p.requires_grad for p in networks[other].parameters())
        assert all(p.requires_grad for p in networks[phase].parameters())
        snapshots[phase] = (other, state(other))
        return original_loss(phase, batch)

    def wrap_step(phase, optimizer):
        original_step = optimizer.step

        def step(*args, **kwargs):
            result = original_step(*args, **kwargs)
            other, before = snapshots[phase]
            for p, (weight, grad) in zip(networks[other].parameters(), before, strict=True):
                same_grad = (grad is None and p.grad is None) or (
                    grad is not None and p.grad is not None and torch.equal(grad, p.grad)
                )
                checks.append((phase, torch.equal(weight, p.detach()) and same_grad))
            return result

        optimizer.step = step

    trainer.family.phase_loss = phase_loss
    for phase, optimizer in trainer.optimizers.items():
        wrap_step(phase, optimizer)
    trainer.fit()

    assert {phase for phase, _ in checks} == {"generator", "discriminator"}
    assert all(ok for _, ok in checks), [phase for phase, ok in checks if not ok]


# ---- k discriminator steps -------------------------------------------------------------


def adam_steps(checkpoint: Path, network: str) -> set[float]:
    tensors = load_file(str(checkpoint))
    prefix = f"optimizers.{network}.state."
    return {t.item() for k, t in tensors.items() if k.startswith(prefix) and k.endswith(".step")}


@pytest.mark.parametrize("d_steps", [1, 3])
def test_d_steps_updates_d_k_times_per_g_update(tiny_train, d_steps):
    steps = 4
    run = tiny_train(d_steps=d_steps, steps=steps, checkpoint_every=100)
    checkpoint = run.checkpoints[-1][1]
    assert adam_steps(checkpoint, "generator") == {float(steps)}
    assert adam_steps(checkpoint, "discriminator") == {float(d_steps * steps)}
    # every D step draws a fresh real batch; G's phase reuses the last one
    with open(checkpoint, "rb") as handle:
        header_size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_size))
    meta = json.loads(header["__metadata__"]["ganforge"])
    per_epoch = 1797 // run.config.batch_size
    position = meta["data_position"]
    assert position["epoch"] * per_epoch + position["batch"] == d_steps * steps


def test_trainer_object_counts_optimizer_steps(tmp_path, tiny_options):
    config = TrainConfig.from_dict({**tiny_options, "steps": 5, "d_steps": 3})
    trainer = Trainer(config, tmp_path / "run", resuming=False)
    trainer.fit()
    d_state = trainer.optimizers["discriminator"].state
    g_state = trainer.optimizers["generator"].state
    assert {s["step"].item() for s in d_state.values()} == {15.0}
    assert {s["step"].item() for s in g_state.values()} == {5.0}


# ---- optimisers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [("adam", torch.optim.Adam), ("rmsprop", torch.optim.RMSprop), ("sgd", torch.optim.SGD)],
)
def test_optimizers_and_learning_rates(tmp_path, tiny_options, name, cls):
    config = TrainConfig.from_dict(
        {**tiny_options, "optimizer": name, "lr_g": 3e-4, "lr_d": 1e-4, "beta1": 0.3, "steps": 2}
    )
    trainer = Trainer(config, tmp_path / "run", resuming=False)
    assert isinstance(trainer.optimizers["generator"], cls)
    assert isinstance(trainer.optimizers["discriminator"], cls)
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == 3e-4
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 1e-4
    g_group = trainer.optimizers["generator"].param_groups[0]
    if name == "adam":
        assert g_group["betas"] == (0.3, config.beta2)
    else:
        assert g_group["momentum"] == 0.3
    # each optimiser owns exactly its own network's parameters
    g_ids = {id(p) for p in trainer.family.networks["generator"].parameters()}
    assert {id(p) for p in g_group["params"]} == g_ids
    run = trainer.fit()
    assert run.step == 2


# ---- the run folder ----------------------------------------------------------------------


def test_run_folder_contents(tiny_train):
    run = tiny_train(steps=7, log_every=3, checkpoint_every=3, sample_every=3, keep_checkpoints=10)
    path = run.path
    config = json.loads((path / "config.json").read_text())
    # the config on disk is fully resolved: the dataset's resolution and channels
    assert config["resolution"] == 28 and config["channels"] == 1
    assert config["steps"] == 7 and config["model"] == "mlp"
    assert TrainConfig.from_dict(config) == run.config

    assert [step for step, _ in run.checkpoints] == [3, 6, 7]
    assert run.step == 7
    samples = sorted(p.name for p in (path / "samples").iterdir())
    assert samples == ["final.png", "step_0000003.png", "step_0000006.png"]
    assert (path / "loss_curves.png").stat().st_size > 1000
    assert not list(path.rglob("*.tmp"))


def test_curves_are_redrawn_at_most_once_a_minute_and_at_the_end(tiny_train, monkeypatch):
    """A redraw of loss_curves.png takes about a second: a run that checkpoints every few
    steps redraws it at its first checkpoint, then no sooner than CURVES_EVERY_S later, and
    always when it ends (with every record)."""
    drawn: list[list[int]] = []

    def spy(records, path, panels, title):
        drawn.append([r["step"] for r in records])

    monkeypatch.setattr(loop, "plot_training_curves", spy)
    tiny_train("throttled", steps=7, log_every=1, checkpoint_every=2)
    assert drawn == [[1, 2], list(range(1, 8))]  # the first checkpoint's, and the end's

    drawn.clear()
    monkeypatch.setattr(loop, "CURVES_EVERY_S", 0.0)
    tiny_train("every", steps=7, log_every=1, checkpoint_every=2)
    assert [steps[-1] for steps in drawn][:3] == [2, 4, 6]  # each checkpoint
    assert drawn[-1] == list(range(1, 8))  # and the end


def watch_critic(monkeypatch) -> list[tuple[str, list[torch.Tensor]]]:
    """From now on, each phase GANFamily runs with the logits of each of its critic calls (the
    D phase: reals, then fakes; the G phase: fakes)."""
    calls: list[tuple[str, list[torch.Tensor]]] = []
    phase_loss, critic = GANFamily.phase_loss, GANFamily.critic

    def watched_phase_loss(self, phase, batch):
        calls.append((phase, []))
        return phase_loss(self, phase, batch)

    def watched_critic(self, images, labels=None, network=None):
        logits, classes = critic(self, images, labels, network)
        calls[-1][1].append(logits.detach().double())
        return logits, classes

    monkeypatch.setattr(GANFamily, "phase_loss", watched_phase_loss)
    monkeypatch.setattr(GANFamily, "critic", watched_critic)
    return calls


def stats_by_hand(phase: str, logits: list[torch.Tensor]) -> dict[str, float]:
    """A phase's logged statistics from D's logits: bce with real target 0.9, fakes 0; G's
    non-saturating loss; D's sigmoid means and the share of logits on the right side of 0."""
    logsigmoid = torch.nn.functional.logsigmoid
    if phase == "generator":
        (f,) = logits
        return {"loss_g": -logsigmoid(f).mean().item(), "d_fake_g": torch.sigmoid(f).mean().item()}
    r, f = logits
    loss_d = (-0.9 * logsigmoid(r) - 0.1 * logsigmoid(-r)).mean() - logsigmoid(-f).mean()
    accuracy = ((r > 0).double().mean() + (f < 0).double().mean()) / 2
    return {
        "loss_d": loss_d.item(),
        "d_real": torch.sigmoid(r).mean().item(),
        "d_fake": torch.sigmoid(f).mean().item(),
        "d_accuracy": accuracy.item(),
    }


def test_metrics_records(tiny_train, monkeypatch):
    calls = watch_critic(monkeypatch)
    run = tiny_train(steps=7, log_every=3, d_steps=2)
    records = run.metrics()
    assert [r["step"] for r in records] == [3, 6, 7]
    lines = (run.path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == records
    expected = {
        "step",
        "loss_d",
        "loss_g",
        "d_real",
        "d_fake",
        "d_accuracy",
        "grad_norm_discriminator",
        "grad_norm_generator",
        "images_per_s",
        "elapsed_s",
    }
    # each record holds the means over its interval (steps 1-3, 4-6, 7) of the statistics
    # of every phase run: two D phases and one G phase a step
    assert [phase for phase, _ in calls] == ["discriminator", "discriminator", "generator"] * 7
    per_step = [
        [stats_by_hand(phase, logits) for phase, logits in calls[3 * i : 3 * i + 3]]
        for i in range(7)
    ]
    for record, steps in zip(records, [range(0, 3), range(3, 6), range(6, 7)], strict=True):
        phases = [stats for i in steps for stats in per_step[i]]
        for key in ("loss_d", "d_real", "d_fake", "d_accuracy", "loss_g", "d_fake_g"):
            values = [stats[key] for stats in phases if key in stats]
            assert len(values) == len(steps) * (1 if key in ("loss_g", "d_fake_g") else 2)
            assert record[key] == pytest.approx(sum(values) / len(values), abs=2e-6), key
    for record in records:
        assert expected <= set(record)
        assert record["grad_norm_discriminator"] > 0 and record["grad_norm_generator"] > 0
        assert record["images_per_s"] > 0
    assert records[0]["elapsed_s"] <= records[-1]["elapsed_s"]


def test_label_smoothing_and_loss_choices_reach_the_family(tmp_path, tiny_options):
    config = TrainConfig.from_dict(
        {**tiny_options, "label_smoothing": 0.2, "g_loss": "saturating", "steps": 3}
    )
    trainer = Trainer(config, tmp_path / "run", resuming=False)
    assert trainer.family.real_label == pytest.approx(0.8)
    assert trainer.family.g_loss is losses.g_saturating
    records = trainer.fit().metrics()
    assert records[-1]["loss_g"] < 0  # log(1 - D(G(z))) is negative


def test_ema_copy(tiny_train):
    with_ema = tiny_train("ema", ema_decay=0.9)
    without = tiny_train("no-ema", ema_decay=0.0)
    ema_keys = [k for k in load_file(str(with_ema.checkpoints[-1][1])) if "generator_ema" in k]
    assert ema_keys
    assert not [k for k in load_file(str(without.checkpoints[-1][1])) if "_ema" in k]
    assert (without.sample(8, seed=0) == without.sample(8, seed=0, ema=False)).all()


def test_the_ema_follows_its_rule_step_by_step_and_sampling_uses_it(tmp_path, tiny_options):
    """After iteration t (from 0), ema = β·ema + (1 - β)·G with β = min(decay, (1+t)/(10+t))
    (ema.py: the warm-up); recomputed here from G's weights recorded after every iteration.
    decay 0.3 is reached at t = 3, so both the warm-up and the decay are checked."""
    decay, steps = 0.3, 8
    options = {**tiny_options, "ema_decay": decay, "steps": steps, "lr_g": 0.02}  # G moves far
    config = TrainConfig.from_dict(options)
    trainer = Trainer(config, tmp_path / "run", resuming=False)
    generator = trainer.family.networks["generator"]
    average = [p.detach().double().clone() for p in generator.parameters()]  # starts as G
    recorded = []
    iteration = trainer._iteration

    def recording_iteration(log_now):
        out = iteration(log_now)
        recorded.append([p.detach().double().clone() for p in generator.parameters()])
        return out

    trainer._iteration = recording_iteration
    run = trainer.fit()
    assert len(recorded) == steps
    assert any(not torch.equal(a, b) for a, b in zip(recorded[0], recorded[-1], strict=True))
    for t, weights in enumerate(recorded):
        beta = min(decay, (1 + t) / (10 + t))
        average = [beta * a + (1 - beta) * w for a, w in zip(average, weights, strict=True)]

    saved = load_file(str(run.checkpoints[-1][1]))
    names = [name for name, _ in generator.named_parameters()]
    for name, expected, raw in zip(names, average, recorded[-1], strict=True):
        ema = saved[f"networks.generator_ema.{name}"].double()
        assert torch.allclose(ema, expected, atol=1e-6), name
        assert not torch.allclose(ema, raw, atol=1e-4), f"{name}: the EMA is the raw G"
        assert torch.equal(saved[f"networks.generator.{name}"].double(), raw)

    # sampling (the API's default and the loop's grids) draws from the EMA copy
    assert trainer.sampling_network() is trainer.state.averages["generator"].network
    by_hand = copy.deepcopy(generator)
    with torch.no_grad():
        for parameter, expected in zip(by_hand.parameters(), average, strict=True):
            parameter.copy_(expected)
    family = run.load()
    ema_samples = generate(family, by_hand, 8, seed=0).astype(int)
    raw_samples = generate(family, generator, 8, seed=0).astype(int)
    assert abs(run.sample(8, seed=0).astype(int) - ema_samples).max() <= 1  # float rounding
    assert (run.sample(8, seed=0, ema=False) == raw_samples).all()
    assert abs(ema_samples - raw_samples).max() > 1


def test_default_run_folder_is_under_runs(tmp_path, tiny_options, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = ganforge.train(**{**tiny_options, "steps": 2})
    assert run.path.parent == Path("runs")
    assert run.path.name.startswith("mlp-digits-")
    assert (tmp_path / run.path / "config.json").is_file()


def test_train_accepts_a_config_object_or_a_mapping(tmp_path, tiny_options):
    options = {**tiny_options, "steps": 2}
    config = TrainConfig.from_dict(options)
    first = ganforge.train(config, out=str(tmp_path / "a"))
    second = ganforge.train(options, out=str(tmp_path / "b"), **{"lr-g": 1e-3})
    assert first.config.steps == 2 and first.config.out == str(tmp_path / "a")
    assert second.config.lr_g == 1e-3


# ---- errors before any training ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "flag", "words"),
    [
        ({"model": "nope"}, "--model", ["nope", "dcgan", "mlp"]),
        ({"data": "no-such-dataset"}, "--data", ["no-such-dataset", "digits", "mnist-mini"]),
        ({"lr_g": -1e-3}, "--lr-g", []),
        ({"lr_d": 0}, "--lr-d", []),
        ({"batch_size": 5000}, "--batch-size", ["5000", "1797"]),
        ({"model": "dcgan", "resolution": 30}, "--resolution", ["30"]),
        ({"device": "cuda:7" if not torch.cuda.is_available() else "tpu"}, "--device", []),
    ],
)
def test_bad_options_fail_before_writing_anything(tmp_path, tiny_options, overrides, flag, words):
    out = tmp_path / "run"
    with pytest.raises(GanforgeError) as info:
        ganforge.train(**{**tiny_options, **overrides, "out": str(out)})
    message = str(info.value)
    assert message.startswith(flag + ":"), message
    for word in words:
        assert word in message
    assert not out.exists()


def test_out_pointing_at_an_existing_run_is_refused_and_left_intact(tiny_train, tree_snapshot):
    run = tiny_train("existing", steps=5)
    before = tree_snapshot(run.path)
    with pytest.raises(GanforgeError) as info:
        tiny_train("existing", steps=20, seed=3)
    message = str(info.value)
    assert message.startswith("--out:") and str(run.path) in message
    assert tree_snapshot(run.path) == before


def test_the_largest_seed_trains_and_a_larger_one_is_refused_clearly(tiny_train):
    """A seed that validates must train (no overflow deep inside torch); a seed out of range is
    a one-line --seed error, not a traceback."""
    run = tiny_train(seed=2**63 - 1, steps=1)
    assert run.step == 1
    with pytest.raises(GanforgeError, match=r"^--seed:"):
        TrainConfig(seed=2**63).validate()

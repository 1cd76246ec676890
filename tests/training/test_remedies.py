"""The remedies in real (tiny) training runs: every flag trains, alone and combined; bad values
are one-line errors naming the flag; runs with remedies resume exactly; and each remedy does
what it is for (a penalty that holds D's gradient near 1, a spectral norm that bounds it, ...)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.cli import build_parser, main
from ganforge.data import load_dataset, to_model_range
from ganforge.models import build_model, list_models
from ganforge.models.gan import GANFamily

WEIGHTED_LAYERS = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Embedding)

SINGLE_REMEDIES = {
    "hinge": {"loss": "hinge"},
    "wasserstein": {"loss": "wasserstein"},
    "least-squares": {"loss": "least-squares"},
    "gp": {"gp": 10.0},
    "r1": {"r1": 1.0},
    "spectral-norm-mlp": {"spectral_norm": True},
    "spectral-norm-dcgan": {"spectral_norm": True, "model": "dcgan"},
    "instance-noise": {"instance_noise": 0.3},
    "diffaugment-dcgan": {"diffaugment": "color,translation,cutout", "model": "dcgan"},
    "label-smoothing": {"label_smoothing": 0.3},
    "least-squares-smoothed": {"loss": "least-squares", "label_smoothing": 0.3},
}
COMBINED = {
    "model": "dcgan",
    "loss": "hinge",
    "spectral_norm": True,
    "diffaugment": "color,translation",
    "r1": 1.0,
}
# Tiny runs where D learns fast, so that what a remedy holds back shows within a few dozen steps
FAST_D = {
    "model": "mlp",
    "data": "digits",
    "width": 8,
    "z_dim": 8,
    "batch_size": 16,
    "lr_d": 2e-3,
    "seed": 0,
    "progress": False,
    "log_every": 10,
    "checkpoint_every": 1000,
    "sample_every": 1000,
    "n_grid": 4,
}


def assert_finite_records(run) -> None:
    records = run.metrics()
    assert records
    for record in records:
        for key in ("loss_d", "loss_g", "d_real", "d_fake", "gp", "r1"):
            if key in record:
                assert math.isfinite(record[key]), (key, record)


class DWatch:
    """What D saw and what the D phase computed in a real run, by wrapping GANFamily: every
    input to discriminate with what D received, every (real logits, fake logits, loss) of the
    D loss, and every D-phase (total, stats)."""

    def __init__(self, monkeypatch):
        self.inputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.d_losses: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.d_phases: list[tuple[torch.Tensor, dict]] = []
        self.families: list[GANFamily] = []
        discriminate, phase_loss = GANFamily.discriminate, GANFamily.phase_loss

        def watched_discriminate(family, images, labels=None, network=None):
            seen = []
            hook = family.discriminator.register_forward_pre_hook(
                lambda module, args: seen.append(args[0].detach())
            )
            try:
                return discriminate(family, images, labels, network)
            finally:
                hook.remove()
                self.inputs.append((images.detach(), seen[0]))

        def watched_phase_loss(family, phase, batch):
            if not any(family is known for known in self.families):
                self.families.append(family)
                family.d_loss = self._recording(family.d_loss)
            total, stats = phase_loss(family, phase, batch)
            if phase == "discriminator":
                self.d_phases.append((total.detach(), stats))
            return total, stats

        monkeypatch.setattr(GANFamily, "discriminate", watched_discriminate)
        monkeypatch.setattr(GANFamily, "phase_loss", watched_phase_loss)

    def _recording(self, d_loss):
        def recorded(real_logits, fake_logits):
            value = d_loss(real_logits, fake_logits)
            self.d_losses.append(
                (real_logits.detach().double(), fake_logits.detach().double(), value.detach())
            )
            return value

        return recorded


def d_loss_by_hand(loss: str, r: torch.Tensor, f: torch.Tensor, real_label: float):
    """The D losses' closed forms on real logits r and fake logits f (README: Remedies)."""
    if loss == "bce":  # targets real_label and 0
        return (-real_label * F.logsigmoid(r) - (1 - real_label) * F.logsigmoid(-r)).mean() - (
            F.logsigmoid(-f).mean()
        )
    if loss == "hinge":
        return torch.relu(1 - r).mean() + torch.relu(1 + f).mean()
    if loss == "wasserstein":
        return f.mean() - r.mean()
    assert loss == "least-squares"
    return 0.5 * ((r - real_label) ** 2).mean() + 0.5 * (f**2).mean()


def largest_singular_values(discriminator: torch.nn.Module) -> dict[str, float]:
    """σ_max of each weight D computes with (its normalised one under spectral norm), reshaped
    to (out, in·k·k), for every weight-bearing layer; read in eval mode (no power iteration)."""
    discriminator.eval()
    sigmas = {}
    for name, layer in discriminator.named_modules():
        if isinstance(layer, WEIGHTED_LAYERS):
            weight = layer.weight.detach().flatten(1)
            sigmas[name] = torch.linalg.matrix_norm(weight, ord=2).item()
    return sigmas


@pytest.mark.parametrize("options", SINGLE_REMEDIES.values(), ids=SINGLE_REMEDIES.keys())
def test_each_remedy_trains_and_does_what_its_flag_says(tiny_train, monkeypatch, options):
    watch = DWatch(monkeypatch)
    steps = 4
    run = tiny_train(steps=steps, log_every=2, **options)
    assert run.step == steps
    assert_finite_records(run)
    assert run.sample(4, seed=0).shape == (4, 28, 28, 1)
    for key, value in options.items():
        assert getattr(run.config, key) == value

    # the D loss of --loss, with the real target of --label-smoothing, on the logits D gave
    loss, real_label = options.get("loss", "bce"), 1 - options.get("label_smoothing", 0.1)
    assert len(watch.d_losses) == len(watch.d_phases) == steps
    for (r, f, value), (total, stats) in zip(watch.d_losses, watch.d_phases, strict=True):
        assert value.item() == pytest.approx(d_loss_by_hand(loss, r, f, real_label).item(), 1e-5)
        assert stats["loss_d"].item() == pytest.approx(value.item())
        assert stats["d_real"].item() == pytest.approx(torch.sigmoid(r).mean().item(), 1e-5)
        # the D phase minimises the loss plus the weighted penalties, and only when asked
        gp, r1 = options.get("gp", 0.0), options.get("r1", 0.0)
        assert ("gp" in stats) == (gp > 0) and ("r1" in stats) == (r1 > 0)
        penalties = gp * stats.get("gp", 0.0) + r1 / 2 * stats.get("r1", 0.0)
        assert total.item() == pytest.approx((value + penalties).item(), rel=1e-5)
        if gp or r1:
            assert penalties > 1e-6

    # what D receives: the images, unless instance noise or DiffAugment change them
    calls = len(watch.inputs) // steps  # reals and fakes in D's phase (+ gp), fakes in G's
    noise = options.get("instance_noise", 0.0)
    for call, (given, received) in enumerate(watch.inputs):
        assert received.shape == given.shape
        if noise:  # std S at step 0, annealed linearly: S / steps at the last step
            expected = noise * (1 - (call // calls) / steps)
            assert (received - given).std().item() == pytest.approx(expected, rel=0.05)
        elif options.get("diffaugment"):
            assert (received - given).abs().mean() > 0.05
        else:
            assert torch.equal(received, given)

    # --spectral-norm: every weight-bearing layer of D, the last included, has σ_max ~ 1 (the
    # power iteration's estimate can only fall short, and lags the weights a little)
    sigmas = largest_singular_values(run.load().networks["discriminator"])
    assert len(sigmas) >= 3
    if options.get("spectral_norm"):
        assert all(0.999 < sigma < 1.06 for sigma in sigmas.values()), sigmas
    else:
        assert not all(sigma == pytest.approx(1.0, abs=0.05) for sigma in sigmas.values())


def test_combined_remedies_train_and_log_their_stats(tiny_train):
    run = tiny_train(steps=4, log_every=2, **COMBINED)
    assert_finite_records(run)
    record = run.metrics()[-1]
    assert {"r1", "d_real_logit", "d_fake_logit"} <= set(record) and "gp" not in record
    saved = json.loads((run.path / "config.json").read_text())
    assert {k: saved[k] for k in COMBINED} == COMBINED


def test_the_cli_flags(tmp_path):
    out = tmp_path / "cli"
    flags = ["--model", "mlp", "--data", "digits", "--width", "8", "--z-dim", "8"]
    flags += ["--batch-size", "16", "--steps", "2", "--log-every", "2", "--n-grid", "4"]
    flags += ["--loss", "wasserstein", "--gp", "10", "--r1", "0.5", "--spectral-norm"]
    flags += ["--instance-noise", "0.1", "--diffaugment", "translation", "--ema", "0.9"]
    assert main(["train", *flags, "--out", str(out), "--no-progress"]) == 0
    config = ganforge.load_run(out).config
    assert (config.loss, config.gp, config.r1, config.spectral_norm) == (
        "wasserstein",
        10,
        0.5,
        True,
    )
    assert (config.instance_noise, config.diffaugment, config.ema_decay) == (
        0.1,
        "translation",
        0.9,
    )


def test_ema_is_an_alias_of_ema_decay():
    parser = build_parser()
    assert parser.parse_args(["train", "--ema", "0.99"]).ema_decay == 0.99
    assert parser.parse_args(["train", "--ema-decay", "0.99"]).ema_decay == 0.99
    assert parser.parse_args(["train"]).ema_decay is None  # not given: the config decides


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss": "ls"}, "--loss: 'ls' is not one of bce, hinge, wasserstein, least-squares"),
        ({"gp": -1.0}, "--gp: must be >= 0"),
        ({"r1": -0.5}, "--r1: must be >= 0"),
        ({"instance_noise": -0.1}, "--instance-noise: must be >= 0"),
        ({"diffaugment": "color,blur"}, "--diffaugment: unknown policy 'blur' (color, transl"),
        ({"spectral_norm": "yes"}, "--spectral-norm: expected true or false"),
        ({"gp": math.inf}, "--gp: must be a finite number"),
        (
            {"loss": "hinge", "g_loss": "saturating"},
            "--g-loss: 'saturating' applies to --loss bce only, not --loss hinge",
        ),
    ],
)
def test_train_rejects_bad_values_naming_the_flag(tiny_train, tmp_path, options, message):
    with pytest.raises(GanforgeError) as info:
        tiny_train("bad", **options)
    assert str(info.value).startswith(message)
    assert not (tmp_path / "bad").exists()


def test_the_cli_error_is_one_line(tmp_path, capsys):
    args = ["train", "--data", "digits", "--diffaugment", "blur", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "ganforge: error: --diffaugment: unknown policy 'blur' (color, translation, cutout)\n"
    )


# ---- resume ------------------------------------------------------------------------------


def final_state(run: ganforge.Run) -> dict[str, torch.Tensor]:
    return load_file(str(run.checkpoints[-1][1]))


@pytest.mark.parametrize(
    "options",
    [
        COMBINED,
        {"loss": "wasserstein", "gp": 10.0, "instance_noise": 0.3, "d_steps": 2},
        {"loss": "least-squares", "diffaugment": "cutout,color", "model": "dcgan", "gp": 1.0},
    ],
    ids=["hinge-sn-diffaugment-r1", "wgan-gp-noise", "lsgan-diffaugment-gp"],
)
def test_runs_with_remedies_resume_exactly(
    tiny_train, tmp_path, without_wall_clock, tree_snapshot, options
):
    """A run that lost its last checkpoint (a crash after step 4) resumes from step 4 to the
    same weights, spectral-norm vectors, optimiser moments and records as the straight run."""
    straight = tiny_train("straight", steps=8, log_every=2, checkpoint_every=4, **options)
    crashed = tmp_path / "crashed"
    for name, data in tree_snapshot(straight.path).items():
        (crashed / name).parent.mkdir(parents=True, exist_ok=True)
        (crashed / name).write_bytes(data)
    (crashed / "checkpoints" / "step_0000008.safetensors").unlink()
    resumed = ganforge.train(resume=crashed)
    assert resumed.step == 8
    a, b = final_state(straight), final_state(resumed)
    assert any(".parametrizations.weight." in k for k in a) == bool(options.get("spectral_norm"))
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


def test_extending_a_run_with_remedies_equals_the_longer_run(tiny_train):
    """Without instance noise, nothing depends on --steps: 4 steps + resume to 8 == 8 steps."""
    straight = tiny_train("straight", steps=8, **COMBINED)
    split = tiny_train("split", steps=4, **COMBINED)
    resumed = ganforge.train(resume=split.path, steps=8)
    a, b = final_state(straight), final_state(resumed)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_a_remedy_cannot_be_switched_on_at_resume(tiny_train, tree_snapshot):
    run = tiny_train(steps=2)
    before = tree_snapshot(run.path)
    changes = [("loss", "hinge"), ("gp", 1.0), ("spectral_norm", True), ("diffaugment", "cutout")]
    for option, value in changes:
        with pytest.raises(GanforgeError, match=f"^--{option.replace('_', '-')}: cannot change"):
            ganforge.train(resume=run.path, steps=4, **{option: value})
    assert tree_snapshot(run.path) == before


def test_a_run_from_before_the_remedies_resumes(tiny_train):
    """Its config.json lacks the new options: they take their defaults, which leave the hash
    (and so its checkpoints) as they were."""
    run = tiny_train(steps=2)
    path = run.path / "config.json"
    config = json.loads(path.read_text())
    for name in ("loss", "gp", "r1", "spectral_norm", "instance_noise", "diffaugment"):
        del config[name]
    path.write_text(json.dumps(config))
    assert ganforge.train(resume=run.path, steps=4).step == 4


# ---- what each remedy does ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_d_runs(tmp_path_factory):
    """Runs where D learns fast, by name, trained once for the module on first use."""
    folder, runs = tmp_path_factory.mktemp("fast-d"), {}
    settings = {
        "wasserstein": {"loss": "wasserstein", "steps": 40},
        "wgan-gp": {"loss": "wasserstein", "gp": 10.0, "steps": 80},
        "wgan-sn": {"loss": "wasserstein", "spectral_norm": True, "steps": 40},
        "hinge": {"loss": "hinge", "steps": 40},
        "least-squares": {"loss": "least-squares", "steps": 40},
        "bce": {"steps": 40},
        "r1": {"r1": 10.0, "steps": 40},
    }

    def get(name: str) -> ganforge.Run:
        if name not in runs:
            runs[name] = ganforge.train(**FAST_D, **settings[name], out=str(folder / name))
        return runs[name]

    return get


def input_gradient_norms(run: ganforge.Run, mix: bool) -> torch.Tensor:
    """‖∇ₓD(x)‖ of the run's final D for 64 real digits, or (`mix`) for interpolates between
    them and 64 fakes, as WGAN-GP takes them."""
    family = run.load()
    torch.manual_seed(1)
    images = to_model_range(load_dataset("digits").images[:64])
    if mix:
        with torch.no_grad():
            fakes = family.networks["generator"](family.sample_latent(64))
        epsilon = torch.rand(64, 1, 1, 1)
        images = epsilon * images + (1 - epsilon) * fakes
    images.requires_grad_(True)
    (grad,) = torch.autograd.grad(family.networks["discriminator"](images).sum(), images)
    return grad.flatten(1).norm(dim=1)


class QuadraticCritic(torch.nn.Module):
    """D(x) = ½c‖x‖² per image, so ‖∇ₓD(x)‖ = c‖x‖: large on real digits (a background of
    -1), smaller between them and a fresh G's fakes (near 0). Its penalty on reals and on
    interpolates differ a lot."""

    def __init__(self, c: float):
        super().__init__()
        self.c = torch.nn.Parameter(torch.tensor(c))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.c * images.flatten(1).pow(2).sum(1)


def test_the_logged_gradient_penalty_is_taken_on_interpolates_of_real_and_fake(digits):
    """WGAN-GP: (‖∇D(x̂)‖ - 1)² on x̂ = εx + (1 - ε)G(z), one ε ~ U(0, 1) per image drawn
    after z; recomputed by hand from the same seed."""
    torch.manual_seed(0)
    config = TrainConfig(model="mlp", width=8, z_dim=8, loss="wasserstein", gp=10.0)
    family = build_model(config, 28, 1)
    family.networks["discriminator"] = QuadraticCritic(0.1)
    seen = []
    family.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    real = to_model_range(digits.images[:16])
    torch.manual_seed(5)
    batch = {"images": real, "labels": digits.labels[:16]}
    total, stats = family.phase_loss("discriminator", batch)

    torch.manual_seed(5)
    with torch.no_grad():
        fake = family.networks["generator"](torch.randn(16, 8))
    epsilon = torch.rand(16, 1, 1, 1)
    mixed = epsilon * real + (1 - epsilon) * fake
    assert len(seen) == 3  # reals, fakes, then the interpolates
    assert torch.allclose(seen[2], mixed, atol=1e-6)
    expected = ((0.1 * mixed.flatten(1).norm(dim=1) - 1) ** 2).mean()
    on_reals = ((0.1 * real.flatten(1).norm(dim=1) - 1) ** 2).mean()
    on_fakes = ((0.1 * fake.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert min(abs(expected - on_reals), abs(expected - on_fakes)) > 0.1  # the test can tell
    assert stats["gp"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert total.item() == pytest.approx((stats["loss_d"] + 10.0 * stats["gp"]).item(), rel=1e-5)


GAN_MODELS = [m for m in list_models() if m != "vae"]  # every model with a discriminator


@pytest.mark.parametrize("model", GAN_MODELS)
def test_spectral_norm_normalises_every_weight_of_every_discriminator(
    tiny_train, model_options, model
):
    """After training steps, each weight D computes with, the last layer's included, has
    largest singular value ~1, and no weight of D escapes the normalisation."""
    run = tiny_train(model=model, steps=3, spectral_norm=True, **model_options(model))
    discriminator = run.load().networks["discriminator"]
    sigmas = largest_singular_values(discriminator)  # as trained: the estimate lags a little
    assert all(0.999 < sigma < 1.15 for sigma in sigmas.values()), sigmas
    discriminator.train()
    layers = [m for m in discriminator.modules() if isinstance(m, WEIGHTED_LAYERS)]
    for _ in range(300):  # in training mode each read of a weight runs one power iteration
        for layer in layers:
            layer.weight  # noqa: B018
    converged = largest_singular_values(discriminator)
    assert all(sigma == pytest.approx(1.0, abs=0.003) for sigma in converged.values()), converged
    last = [name for name, m in discriminator.named_modules() if isinstance(m, WEIGHTED_LAYERS)]
    assert last and last[-1] in converged
    weights = [name for name, p in discriminator.named_parameters() if p.dim() >= 2]
    assert weights and all(name.endswith(".parametrizations.weight.original") for name in weights)
    assert len(weights) == len(sigmas)


@pytest.mark.slow
def test_gradient_penalty_holds_the_critics_gradient_near_one(fast_d_runs):
    unconstrained = input_gradient_norms(fast_d_runs("wasserstein"), mix=True)
    assert unconstrained.min() > 5  # a bare Wasserstein critic's gradient runs away
    run = fast_d_runs("wgan-gp")
    penalties = [record["gp"] for record in run.metrics()]
    assert penalties[-1] < 0.05 and penalties[-1] < max(penalties) / 10  # the logged gp falls
    assert penalties[-3:] == sorted(penalties[-3:], reverse=True)
    norms = input_gradient_norms(run, mix=True)
    assert 0.8 < norms.mean() < 1.25 and norms.max() < 1.5


@pytest.mark.slow
def test_spectral_norm_makes_the_mlp_critic_1_lipschitz(fast_d_runs):
    """Linear layers of largest singular value 1 and LeakyReLU (slope <= 1): ‖∇D‖ <= 1 at any
    input, even under the Wasserstein loss that drives the unconstrained critic's to 5+."""
    run = fast_d_runs("wgan-sn")
    for mix in (False, True):
        norms = input_gradient_norms(run, mix=mix)
        assert norms.max() < 1.01
    assert norms.mean() > 0.5  # bounded, not flattened: D still uses its budget


@pytest.mark.slow
def test_hinge_margin_stops_d_where_the_wasserstein_critic_runs_on(fast_d_runs):
    hinge = fast_d_runs("hinge").metrics()[-1]
    wasserstein = fast_d_runs("wasserstein").metrics()[-1]
    assert hinge["d_real_logit"] > hinge["d_fake_logit"]  # D separates real from fake ...
    assert abs(hinge["d_real_logit"]) < 10 and abs(hinge["d_fake_logit"]) < 10  # ... boundedly
    assert wasserstein["d_real_logit"] > 100


@pytest.mark.slow
def test_least_squares_d_pulls_its_outputs_to_the_targets(fast_d_runs):
    """Real outputs go to b = 1 - label smoothing (0.9 by default), fake ones to a = 0."""
    record = fast_d_runs("least-squares").metrics()[-1]
    assert record["d_real_logit"] == pytest.approx(0.9, abs=0.15)
    assert record["d_fake_logit"] == pytest.approx(0.0, abs=0.2)


@pytest.mark.slow
def test_r1_keeps_d_flat_on_the_real_images(fast_d_runs):
    plain = input_gradient_norms(fast_d_runs("bce"), mix=False).pow(2).mean()
    run = fast_d_runs("r1")
    penalised = input_gradient_norms(run, mix=False).pow(2).mean()
    assert penalised < plain / 5
    # the logged r1 is that same quantity, measured on the training batches
    assert run.metrics()[-1]["r1"] == pytest.approx(penalised.item(), rel=0.5)


def measure_instance_noise(monkeypatch) -> list[float]:
    """From now on, the std of the noise in each batch D receives (D's input minus the images
    given to GANFamily.discriminate), in order."""
    original = GANFamily.discriminate
    noise: list[float] = []

    def measured(self, images, labels=None, network=None):
        seen = []
        hook = self.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        try:
            return original(self, images, labels, network)
        finally:
            hook.remove()
            noise.append((seen[0] - images).std().item())

    monkeypatch.setattr(GANFamily, "discriminate", measured)
    return noise


def test_instance_noise_on_d_inputs_anneals_over_the_run(tiny_train, monkeypatch):
    """Measured on what D receives in a real run: the noise std starts at --instance-noise and
    falls linearly to almost 0 at --steps."""
    noise = measure_instance_noise(monkeypatch)
    tiny_train(steps=10, instance_noise=0.4, log_every=10)
    assert len(noise) == 10 * 3  # D sees reals and fakes, then fakes in G's phase
    for step in range(10):
        expected = 0.4 * (1 - step / 10)
        for std in noise[3 * step : 3 * step + 3]:
            assert std == pytest.approx(expected, rel=0.05)


def test_extending_a_noisy_run_stretches_its_schedule_to_the_new_steps(tiny_train, monkeypatch):
    run = tiny_train(steps=4, instance_noise=0.4, log_every=4)
    noise = measure_instance_noise(monkeypatch)
    ganforge.train(resume=run.path, steps=8)
    assert noise[0] == pytest.approx(0.4 * (1 - 4 / 8), rel=0.05)  # not 0.4 * (1 - 4 / 4) = 0
    assert noise[-1] == pytest.approx(0.4 / 8, rel=0.05)


def test_diffaugment_reaches_d_in_every_phase_of_a_run(tiny_train, monkeypatch):
    seen: list[torch.Tensor] = []
    original = GANFamily.phase_loss
    watching: set[int] = set()

    def watched(self, phase, batch):
        if id(self) not in watching:
            watching.add(id(self))
            self.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        return original(self, phase, batch)

    monkeypatch.setattr(GANFamily, "phase_loss", watched)
    tiny_train(steps=3, diffaugment="cutout", log_every=3)
    assert len(seen) == 3 * 3
    for images in seen:  # every image D saw, real or fake, had a cutout
        assert ((images == 0).flatten(1).sum(1) >= 7 * 7).all()

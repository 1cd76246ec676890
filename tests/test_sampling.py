"""Sampling: seeded uint8 NHWC images from a family's network or a saved run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ganforge
from cli_errors import assert_one_line_error
from ganforge import GanforgeError, TrainConfig
from ganforge.cli import main
from ganforge.models import build_model
from ganforge.sampling import Truncation, generate, truncate_latent
from tiny import TINY_OPTIONS, TINY_POINTS
from truncated import closed_form_class_rows, closed_form_images, resampled, scaled


@pytest.fixture
def dcgan_family():
    torch.manual_seed(0)
    family = build_model(TrainConfig(model="dcgan", width=4, z_dim=6), 32, 3)
    # move batchnorm running statistics away from their init, as training would
    family.networks.train()
    with torch.no_grad():
        family.networks["generator"](torch.randn(16, 6))
    return family


def test_generate_returns_uint8_nhwc(dcgan_family):
    images = generate(dcgan_family, dcgan_family.networks["generator"], 5, seed=0)
    assert isinstance(images, np.ndarray)
    assert images.dtype == np.uint8
    assert images.shape == (5, 32, 32, 3)
    assert images.std() > 0


def test_generate_is_seeded(dcgan_family):
    network = dcgan_family.networks["generator"]
    first = generate(dcgan_family, network, 6, seed=1)
    assert np.array_equal(first, generate(dcgan_family, network, 6, seed=1))
    assert not np.array_equal(first, generate(dcgan_family, network, 6, seed=2))


def test_generate_leaves_global_rng_and_training_mode_alone(dcgan_family):
    network = dcgan_family.networks["generator"]
    network.train()
    before = torch.get_rng_state()
    generate(dcgan_family, network, 4, seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert network.training
    network.eval()
    generate(dcgan_family, network, 4, seed=0)
    assert not network.training


def test_generate_uses_eval_mode_so_chunking_does_not_matter(dcgan_family):
    network = dcgan_family.networks["generator"]
    whole = generate(dcgan_family, network, 7, seed=3)
    chunked = generate(dcgan_family, network, 7, seed=3, batch_size=2)
    assert np.array_equal(whole, chunked)


# ---- Run.sample --------------------------------------------------------------------------------


def test_run_sample_shape_and_dtype(trained_run):
    images = trained_run.sample(16, seed=0)
    assert images.shape == (16, 28, 28, 1)
    assert images.dtype == np.uint8


def test_run_sample_same_seed_same_images(trained_run):
    again = ganforge.load_run(trained_run.path)
    assert np.array_equal(trained_run.sample(9, seed=4), again.sample(9, seed=4))
    assert not np.array_equal(trained_run.sample(9, seed=4), again.sample(9, seed=5))


def test_run_sample_matches_the_raw_generator(trained_run):
    run = ganforge.load_run(trained_run.path)
    family = run.load()
    expected = generate(family, family.networks["generator"], 8, seed=2)
    assert np.array_equal(run.sample(8, seed=2, ema=False), expected)
    ema = run.generator(ema=True)
    assert ema is family.networks["generator_ema"]
    assert np.array_equal(run.sample(8, seed=2), generate(family, ema, 8, seed=2))


def test_run_load_an_older_checkpoint(trained_run):
    (first_step, first), (last_step, _) = trained_run.checkpoints[0], trained_run.checkpoints[-1]
    assert first_step < last_step
    run = ganforge.load_run(trained_run.path)
    newest = run.sample(8, seed=0, ema=False)
    run.load(first)
    assert not np.array_equal(run.sample(8, seed=0, ema=False), newest)


def test_run_sample_needs_at_least_one(trained_run):
    with pytest.raises(GanforgeError, match="^--n:"):
        trained_run.sample(0)


def test_run_without_checkpoint(tmp_path, trained_run):
    (tmp_path / "config.json").write_text((trained_run.path / "config.json").read_text())
    run = ganforge.load_run(tmp_path)
    assert run.step == 0 and run.metrics() == []
    with pytest.raises(GanforgeError, match="no checkpoint"):
        run.sample(4)


def test_load_run_errors(tmp_path):
    with pytest.raises(GanforgeError, match="not a ganforge run"):
        ganforge.load_run(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(GanforgeError, match="config.json"):
        ganforge.load_run(tmp_path)


def test_run_metadata(trained_run):
    assert trained_run.step == trained_run.config.steps
    assert trained_run.metrics()[-1]["step"] == trained_run.step
    assert "mlp" in repr(trained_run) and str(trained_run.step) in repr(trained_run)


def test_loading_and_sampling_leave_the_global_rng_untouched(trained_run):
    run = ganforge.load_run(trained_run.path)
    before = torch.get_rng_state()
    run.sample(4, seed=3)
    assert torch.equal(before, torch.get_rng_state())


# ---- the truncation trick ------------------------------------------------------------------


def test_scale_truncation_is_exactly_psi_times_z():
    z = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    for psi in (0.1, 0.5, 0.7):
        assert torch.equal(truncate_latent(z, psi), psi * z)
    assert torch.equal(truncate_latent(z, 1.0), z)


def truncated_normal_std(a: float) -> float:
    """The std of N(0, 1) conditioned on |z| <= a: sqrt(1 - 2 a phi(a) / (2 Phi(a) - 1))."""
    density = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    inside = math.erf(a / math.sqrt(2))
    return math.sqrt(1 - 2 * a * density / inside)


@pytest.mark.parametrize("psi", [0.5, 1.0, 2.0])
def test_resample_truncation_redraws_only_the_components_outside(psi):
    z = torch.randn(2000, 50, generator=torch.Generator().manual_seed(1))
    cut = truncate_latent(z, psi, "resample", torch.Generator().manual_seed(2))
    inside = z.abs() <= psi
    assert cut.abs().max() <= psi
    assert torch.equal(cut[inside], z[inside])  # the components inside are kept as they are
    assert not torch.equal(z, cut) and (cut[~inside] != z[~inside]).all()
    # redrawn from N(0, 1) until inside: a truncated normal, not a clamp or a rescale
    redrawn = cut[~inside].double()
    assert len(redrawn) > 2000
    assert abs(redrawn.mean()) < 0.05 * psi
    assert redrawn.std() == pytest.approx(truncated_normal_std(psi), rel=0.05)


def test_resample_truncation_is_seeded_by_its_generator_alone():
    z = torch.randn(100, 8, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    first = truncate_latent(z, 0.5, "resample", torch.Generator().manual_seed(4))
    torch.manual_seed(1)
    before = torch.get_rng_state()
    again = truncate_latent(z, 0.5, "resample", torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is untouched
    other = truncate_latent(z, 0.5, "resample", torch.Generator().manual_seed(5))
    assert not torch.equal(first, other)


def test_truncation_psi_one_leaves_sampling_bit_identical(dcgan_family):
    network = dcgan_family.networks["generator"]
    plain = generate(dcgan_family, network, 6, seed=1)
    assert np.array_equal(generate(dcgan_family, network, 6, 1, truncation=Truncation(1.0)), plain)
    assert not Truncation(1.0).active and Truncation(1.0).record() is None
    assert Truncation(1.0, "resample").active  # a threshold of 1 does cut the noise


def test_run_sample_with_truncation_decodes_the_truncated_noise(trained_run):
    run = ganforge.load_run(trained_run.path)
    plain = run.sample(8, seed=2)
    assert np.array_equal(run.sample(8, seed=2, truncation=1.0), plain)
    half = run.sample(8, seed=2, truncation=0.5)
    assert np.array_equal(half, closed_form_images(run, 8, 2, scaled(0.5)))
    assert not np.array_equal(half, plain)
    cut = run.sample(8, seed=2, truncation=Truncation(0.8, "resample"))
    assert np.array_equal(cut, closed_form_images(run, 8, 2, resampled(0.8)))
    assert not np.array_equal(cut, plain) and not np.array_equal(cut, half)
    assert np.array_equal(run.sample(8, seed=2, truncation=Truncation(0.8, "resample")), cut)


@pytest.mark.parametrize(
    "psi, mode, words",
    [
        (0, "scale", "above 0"),
        (-0.5, "resample", "above 0"),
        (1.5, "scale", "(0, 1]"),
        (math.nan, "scale", "finite"),
        (math.inf, "resample", "finite"),
        (0.001, "resample", "at least 0.01"),
        ("half", "scale", "not a number"),
    ],
)
def test_bad_truncations_are_refused_naming_the_flag(psi, mode, words):
    for make in (lambda: Truncation(psi, mode), lambda: truncate_latent(torch.ones(2), psi, mode)):
        with pytest.raises(GanforgeError, match="^--truncation: ") as error:
            make()
        assert words in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(GanforgeError, match="^--truncation-mode: 'cut'"):
        Truncation(0.5, "cut")


def test_cli_sample_truncation_writes_the_truncated_samples_and_says_so(
    trained_run, tmp_path, capsys
):
    run = ganforge.load_run(trained_run.path)
    base = ["sample", str(run.path), "--n", "8", "--seed", "3"]
    assert main([*base, "--out", str(tmp_path / "plain.npz")]) == 0
    assert main([*base, "--truncation", "0.5", "--out", str(tmp_path / "half.npz")]) == 0
    assert "truncation psi 0.5 (scale)" in capsys.readouterr().out
    flags = ["--truncation", "0.8", "--truncation-mode", "resample"]
    assert main([*base, *flags, "--out", str(tmp_path / "cut.npz")]) == 0
    plain, half, cut = (np.load(tmp_path / f"{name}.npz") for name in ("plain", "half", "cut"))
    assert plain.files == ["images"]  # no truncation: the file is as it always was
    assert np.array_equal(half["images"], closed_form_images(run, 8, 3, scaled(0.5)))
    assert np.array_equal(cut["images"], closed_form_images(run, 8, 3, resampled(0.8)))
    assert not np.array_equal(half["images"], plain["images"])
    assert (float(half["truncation_psi"]), str(half["truncation_mode"])) == (0.5, "scale")
    assert (float(cut["truncation_psi"]), str(cut["truncation_mode"])) == (0.8, "resample")


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--truncation", "0"], ["--truncation", "above 0"]),
        (["--truncation", "2"], ["--truncation", "(0, 1]"]),
        (["--truncation", "nan"], ["--truncation", "finite"]),
        (["--truncation", "inf", "--truncation-mode", "resample"], ["--truncation", "finite"]),
        (["--truncation-mode", "resample"], ["--truncation-mode", "--truncation PSI"]),
        (["--truncation", "0.5", "--truncation-mode", "cut"], ["--truncation-mode", "cut"]),
    ],
)
def test_cli_sample_bad_truncation_is_one_line(trained_run, tmp_path, capsys, flags, words):
    out = tmp_path / "never.png"
    assert main(["sample", str(trained_run.path), *flags, "--out", str(out)]) == 2
    assert_one_line_error(capsys, *words)
    assert not out.exists()


def test_cli_class_rows_scale_the_noise_they_share(tmp_path):
    run = ganforge.train(**{**TINY_OPTIONS, "model": "cgan", "steps": 2}, out=str(tmp_path / "c"))
    out = tmp_path / "rows.npz"
    flags = ["--classes", "all", "--n", "3", "--seed", "2", "--truncation", "0.5"]
    assert main(["sample", str(run.path), *flags, "--out", str(out)]) == 0
    saved = np.load(out)
    assert np.array_equal(saved["images"], closed_form_class_rows(run, 3, 2, 0.5))
    assert float(saved["truncation_psi"]) == 0.5


def test_a_run_with_latent_codes_truncates_its_noise_and_keeps_its_codes(tmp_path):
    """InfoGAN's z holds a one-hot category and uniform codes after its Gaussian noise: scale
    and resample act on the noise alone."""
    from ganforge.sampling import draw_latent

    run = ganforge.train(
        **{**TINY_OPTIONS, "model": "infogan", "steps": 1}, out=str(tmp_path / "i")
    )
    family = run.load()
    noise = run.config.z_dim
    plain = draw_latent(family, 50, seed=1)
    scaled = draw_latent(family, 50, seed=1, truncation=Truncation(0.5))
    assert torch.equal(scaled[:, :noise], plain[:, :noise] * 0.5)
    assert torch.equal(scaled[:, noise:], plain[:, noise:])  # the codes as drawn
    resampled = draw_latent(family, 50, seed=1, truncation=Truncation(0.3, "resample"))
    assert resampled[:, :noise].abs().max() <= 0.3
    assert torch.equal(resampled[:, noise:], plain[:, noise:])
    noise_only = lambda z, _: torch.cat([0.5 * z[:, :noise], z[:, noise:]], dim=1)  # noqa: E731
    assert np.array_equal(
        run.sample(4, seed=1, truncation=0.5), closed_form_images(run, 4, 1, noise_only)
    )


def test_a_run_of_points_samples_truncated_noise(tmp_path, capsys):
    run = ganforge.train(**TINY_POINTS, out=str(tmp_path / "ring"))
    out = tmp_path / "points.npz"
    flags = ["--n", "50", "--truncation", "0.5", "--out", str(out)]
    assert main(["sample", str(run.path), *flags]) == 0
    saved = np.load(out)
    family = run.load()
    z = family.sample_latent(50, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = family.sample(run.generator(), 0.5 * z).numpy()
    assert np.array_equal(saved["points"], expected) and float(saved["truncation_psi"]) == 0.5

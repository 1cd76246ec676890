"""The mode-collapse lab end to end: an mlp trained on point data through the command line
(run folder, GAN Lab frames, mode counts in the records), the refusals of image options and
image models, `sample` of points, `eval` by the modes of the mixture, and the doctor's
PointModeCollapse on synthetic records and on a generator collapsed on purpose."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cli_errors import assert_one_line_error
from ganforge import GanforgeError, TrainConfig, load_run
from ganforge.cli import main
from ganforge.data.points import load_point_dataset
from ganforge.metrics.mixture import mixture_scores
from ganforge.models.mlp import MLPGenerator
from ganforge.training.doctor.detectors import ModeCollapse, PointModeCollapse

RING_MODES = 8
FRAME_SIZE = 360  # a GAN Lab frame: 4 inches at 90 dpi


def point_flags(out, data: str = "ring8", *extra: str, **overrides) -> list[str]:
    """`ganforge train` of a tiny mlp on point data, 2 steps, a record at each 2."""
    options = {
        "model": "mlp",
        "data": data,
        "out": out,
        "steps": 2,
        "batch-size": 16,
        "width": 8,
        "z-dim": 2,
        "seed": 0,
        "log-every": 2,
        "sample-every": 100,
        "checkpoint-every": 100,
        **overrides,
    }
    return ["train", *(f"--{k}={v}" for k, v in options.items()), "--no-progress", *extra]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """A 4-step mlp run on ring8 with a frame, a record and a checkpoint every 2 steps."""
    out = tmp_path_factory.mktemp("points") / "ring"
    flags = point_flags(out, steps=4, **{"sample-every": 2, "checkpoint-every": 2})
    assert main(flags) == 0
    return load_run(out)


# ---- training on points ------------------------------------------------------------------


def test_a_run_of_points_records_its_dimension_and_no_image_size(ring_run):
    config = json.loads((ring_run.path / "config.json").read_text())
    assert config["point_dims"] == 2
    assert config["resolution"] is None and config["channels"] is None
    assert [step for step, _ in ring_run.checkpoints] == [2, 4]


def test_the_progress_pictures_are_gan_lab_frames(ring_run):
    for step in (2, 4):
        with Image.open(ring_run.path / "samples" / f"step_{step:07d}.png") as image:
            assert image.mode == "RGB"
            width, height = image.size
            pixels = np.asarray(image)
        assert abs(width - FRAME_SIZE) <= 4 and abs(height - FRAME_SIZE) <= 4
        colours = np.unique(pixels.reshape(-1, 3), axis=0)
        assert len(colours) > 50  # a decision map, points and arrows: not one flat colour


def test_every_record_counts_the_modes_of_ring8(ring_run):
    records = ring_run.metrics()
    assert [r["step"] for r in records] == [2, 4]
    for record in records:
        assert record["num_modes"] == RING_MODES
        assert 0 <= record["modes_captured"] <= RING_MODES
        assert 0 <= record["high_quality"] <= 1 and record["reverse_kl"] >= 0


def test_a_csv_of_points_trains(tmp_path):
    rows = np.random.default_rng(0).normal(size=(200, 2))
    np.savetxt(tmp_path / "points.csv", rows, delimiter=",", header="x,y", comments="")
    assert main(point_flags(tmp_path / "run", str(tmp_path / "points.csv"))) == 0
    run = load_run(tmp_path / "run")
    assert run.config.point_dims == 2 and run.step == 2
    assert run.sample(5, seed=0).shape == (5, 2)
    assert "modes_captured" not in run.metrics()[-1]  # a CSV's points have no known modes


# ---- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "overrides", "named"),
    [
        ((), {"model": "dcgan"}, "--model"),
        ((), {"resolution": 32}, "--resolution"),
        ((), {"channels": 3}, "--channels"),
        (("--hflip",), {}, "--hflip"),
    ],
)
def test_image_models_and_options_are_refused_for_points(tmp_path, capsys, extra, overrides, named):
    out = tmp_path / "run"
    assert main(point_flags(out, "ring8", *extra, **overrides)) == 2
    assert_one_line_error(capsys, named)
    assert not out.exists()


@pytest.mark.parametrize("bad", [{"resolution": 32}, {"channels": 1}, {"hflip": True}])
def test_a_config_of_points_refuses_image_options(bad):
    """Checked on the config too, where point_dims is recorded (a config file, a resume)."""
    flag = "--" + next(iter(bad))
    with pytest.raises(GanforgeError, match=f"^{flag}: point data"):
        TrainConfig.from_dict({"model": "mlp", "data": "ring8", "point_dims": 2, **bad})
    TrainConfig.from_dict({"model": "mlp", "data": "ring8", "point_dims": 2})


def test_a_missing_csv_is_refused_naming_it(tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert main(point_flags(tmp_path / "run", str(missing))) == 2
    assert_one_line_error(capsys, "nowhere.csv", "not found")
    assert not (tmp_path / "run").exists()


# ---- sample ------------------------------------------------------------------------------


def test_sample_writes_points_seeded(ring_run, tmp_path):
    def points(seed: int, name: str) -> np.ndarray:
        out = tmp_path / name
        assert (
            main(
                ["sample", str(ring_run.path), "--n", "100", "--seed", str(seed), "--out", str(out)]
            )
            == 0
        )
        with np.load(out) as archive:
            assert list(archive.keys()) == ["points"]
            return archive["points"]

    first, again, other = points(1, "a.npz"), points(1, "b.npz"), points(2, "c.npz")
    assert first.dtype == np.float32 and first.shape == (100, 2)
    assert np.isfinite(first).all()
    assert np.array_equal(first, again) and not np.allclose(first, other)


def test_sample_csv_and_png(ring_run, tmp_path):
    run = str(ring_run.path)
    assert main(["sample", run, "--n", "100", "--seed", "3", "--out", str(tmp_path / "p.npz")]) == 0
    assert main(["sample", run, "--n", "100", "--seed", "3", "--out", str(tmp_path / "p.csv")]) == 0
    with np.load(tmp_path / "p.npz") as archive:
        expected = archive["points"]
    table = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert table.shape == (100, 2)
    np.testing.assert_allclose(table, expected, rtol=1e-6, atol=1e-6)

    assert main(["sample", run, "--n", "100", "--out", str(tmp_path / "p.png")]) == 0
    with Image.open(tmp_path / "p.png") as image:
        assert image.format == "PNG" and image.mode == "RGB" and min(image.size) > 100


def test_sample_refuses_an_image_type_for_points(ring_run, tmp_path, capsys):
    out = tmp_path / "points.jpg"
    assert main(["sample", str(ring_run.path), "--n", "10", "--out", str(out)]) == 2
    assert_one_line_error(capsys, "--out", "points.jpg")
    assert not out.exists()


# ---- eval --------------------------------------------------------------------------------


def test_eval_of_points_counts_the_modes(ring_run, capsys):
    assert main(["eval", str(ring_run.path)]) == 0
    result = json.loads((ring_run.path / "eval.json").read_text())
    metrics = result["metrics"]
    assert result["n_fake"] == 2500
    assert metrics["num_modes"] == RING_MODES
    assert 0 <= metrics["modes_captured"] <= RING_MODES
    assert 0 <= metrics["high_quality"] <= 1 and metrics["reverse_kl"] >= 0
    assert "modes captured" in capsys.readouterr().out


def test_eval_refuses_an_image_metric_for_points(ring_run, capsys):
    assert main(["eval", str(ring_run.path), "--metrics", "fid"]) == 2
    assert_one_line_error(capsys, "--metrics", "fid")


def test_eval_of_points_without_modes_is_refused(tmp_path, capsys):
    assert main(point_flags(tmp_path / "moons", "moons")) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "moons")]) == 2
    assert_one_line_error(capsys, "moons", "no modes")
    assert not (tmp_path / "moons" / "eval.json").exists()


def test_the_mixture_metric_during_training(tmp_path, capsys):
    out = tmp_path / "run"
    flags = point_flags(out, **{"eval-every": 2, "eval-metric": "reverse_kl", "eval-n": 500})
    assert main(flags) == 0
    evaluations = [r for r in load_run(out).metrics() if "eval_reverse_kl" in r]
    assert [r["step"] for r in evaluations] == [2]
    assert evaluations[0]["eval_reverse_kl"] >= 0

    assert main(point_flags(tmp_path / "fid", **{"eval-every": 2, "eval-metric": "fid"})) == 2
    assert_one_line_error(capsys, "--eval-metric")
    assert not (tmp_path / "fid").exists()


# ---- the doctor: PointModeCollapse -------------------------------------------------------


def mode_records(captured: list[float], start: int = 0, total: float = RING_MODES) -> list[dict]:
    return [
        {"step": start + 50 * i, "modes_captured": c, "num_modes": total, "reverse_kl": 0.3}
        for i, c in enumerate(captured)
    ]


def firing(detector, sequence: list[dict]) -> list[bool]:
    return [detector.reads(r) and detector.examine(r) is not None for r in sequence]


def test_point_mode_collapse_fires_after_patience_records_with_modes_missing():
    detector = PointModeCollapse(TrainConfig(doctor_warmup=0))  # patience 5
    assert firing(detector, mode_records([6, 6, 6, 6, 6, 7])) == [False] * 4 + [True, True]
    evidence = detector.examine(mode_records([7], start=300)[0])
    assert (evidence["modes_captured"], evidence["num_modes"], evidence["records"]) == (7, 8, 7)
    assert "7 of the 8 modes" in evidence["explanation"]


def test_point_mode_collapse_counts_records_in_a_row():
    detector = PointModeCollapse(TrainConfig(doctor_warmup=0, doctor_patience=3))
    captured = [5, 5, 8, 5, 5, 5]  # a record with every mode breaks the streak
    assert firing(detector, mode_records(captured)) == [False] * 5 + [True]


def test_point_mode_collapse_is_quiet_when_every_mode_is_captured():
    detector = PointModeCollapse(TrainConfig(doctor_warmup=0, doctor_patience=1))
    assert not any(firing(detector, mode_records([8] * 10)))


def test_point_mode_collapse_waits_for_the_warmup():
    detector = PointModeCollapse(TrainConfig(doctor_warmup=500, doctor_patience=2))
    sequence = mode_records([1] * 14)  # steps 0..650
    assert firing(detector, sequence) == [False] * 11 + [True] * 3  # from 500 and 550


def test_real_ring8_points_as_samples_are_healthy_and_a_missing_mode_is_not():
    """Records made from the real data (the mixture score of 2,500 real points) keep the
    detector quiet; the same points without one ring mode fire it."""
    data = load_point_dataset("ring8")
    modes, std = data.modes.numpy(), data.mode_std

    def record_of(points: np.ndarray) -> dict:
        scores = mixture_scores(points, modes, std)
        return {"modes_captured": scores.modes_captured, "num_modes": scores.num_modes}

    healthy = record_of(data.points[:2500].numpy())
    assert healthy == {"modes_captured": 8, "num_modes": 8}
    seven = data.points[data.labels != 3][:2500].numpy()
    missing = record_of(seven)
    assert missing == {"modes_captured": 7, "num_modes": 8}

    config = TrainConfig(doctor_warmup=0, doctor_patience=2)
    sequence = [{"step": 50 * i, **healthy} for i in range(6)]
    assert not any(firing(PointModeCollapse(config), sequence))
    sequence = [{"step": 50 * i, **missing} for i in range(3)]
    assert firing(PointModeCollapse(config), sequence) == [False, True, True]


def test_the_remedies_start_with_the_fixes_made_for_collapse():
    remedies = PointModeCollapse(TrainConfig()).remedies()
    assert remedies[:2] == ["--pack 2", "--minibatch-std"]
    assert "--spectral-norm" in remedies  # then the general ones

    packed = PointModeCollapse(TrainConfig(pack=2)).remedies()
    assert packed[0] == "--minibatch-std" and not any(r.startswith("--pack") for r in packed)
    layered = PointModeCollapse(TrainConfig(minibatch_std=True)).remedies()
    assert layered[0] == "--pack 2" and "--minibatch-std" not in layered
    both = PointModeCollapse(TrainConfig(pack=2, minibatch_std=True)).remedies()
    assert not {"--pack 2", "--minibatch-std"} & set(both) and both


def test_the_diversity_detector_leaves_records_of_modes_to_the_points_detector():
    detector = ModeCollapse(TrainConfig(doctor_warmup=0, doctor_patience=1))
    collapsed = {"step": 0, "diversity": 0.0, "diversity_real": 1.0}
    assert firing(detector, [collapsed]) == [True]
    counted = {**collapsed, "step": 50, "modes_captured": 8.0, "num_modes": 8.0}
    assert not detector.reads(counted)


def test_a_generator_collapsed_to_one_point_is_reported(tmp_path, monkeypatch):
    forward = MLPGenerator.forward
    monkeypatch.setattr(MLPGenerator, "forward", lambda self, z: forward(self, z * 0))
    out = tmp_path / "run"
    flags = point_flags(
        out,
        steps=10,
        **{"log-every": 5, "doctor-warmup": 0, "doctor-patience": 2},
    )
    assert main(flags) == 0
    run = load_run(out)
    assert [r["modes_captured"] <= 1 for r in run.metrics()] == [True, True]
    events = [e for e in run.events() if e["event"] == "mode_collapse"]
    assert [e["step"] for e in events] == [10]  # records at 5 and 10: patience 2
    evidence = events[0]["evidence"]
    assert evidence["num_modes"] == RING_MODES and evidence["modes_captured"] <= 1
    # the causes' fixes first (no collapse remedy, a constant rate), then the detector's
    assert events[0]["remedies"][:3] == ["--pack 2", "--lr-decay cosine", "--minibatch-std"]

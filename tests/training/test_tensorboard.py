"""--tensorboard: event files that hold what metrics.jsonl and samples/ hold (read back with
TensorBoard's own reader), histograms of every parameter, and resume-exact appending."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.cli import build_parser
from ganforge.training.tensorboard_log import histograms, record_scalars, scalar_tag

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_tensorboard(run: ganforge.Run):
    """Everything in RUN/tensorboard, as TensorBoard itself loads it (purges included)."""
    kinds = ("scalars", "images", "histograms")
    accumulator = event_accumulator.EventAccumulator(
        str(run.path / "tensorboard"), size_guidance=dict.fromkeys(kinds, 0)
    )
    return accumulator.Reload()


def tensorboard_scalars(accumulator) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl key -> (step, value) of each point, from the "group/key" tags."""
    return {
        tag.split("/", 1)[1]: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def metrics_scalars(run: ganforge.Run) -> dict[str, list[tuple[int, float]]]:
    """The same from metrics.jsonl: every number of every record but its step and flags."""
    found: dict[str, list[tuple[int, float]]] = {}
    for record in run.metrics():
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                found.setdefault(key, []).append((record["step"], value))
    return found


def assert_same_scalars(run: ganforge.Run, accumulator) -> None:
    logged, written = tensorboard_scalars(accumulator), metrics_scalars(run)
    assert set(logged) == set(written)
    for key, points in written.items():
        assert [step for step, _ in logged[key]] == [step for step, _ in points], key
        values = [value for _, value in logged[key]]
        assert values == pytest.approx([value for _, value in points], rel=1e-6), key


def decoded(image_event) -> np.ndarray:
    with Image.open(io.BytesIO(image_event.encoded_image_string)) as picture:
        return np.asarray(picture.convert("RGB"))


def test_tensorboard_holds_the_records_samples_and_histograms(tiny_train):
    run = tiny_train(steps=10, sample_every=5, eval_every=5, eval_n=64, gp=1.0, tensorboard=True)
    accumulator = read_tensorboard(run)
    assert_same_scalars(run, accumulator)
    logged = tensorboard_scalars(accumulator)
    for key in ("loss_d", "d_real", "grad_norm_generator", "diversity", "gp", "eval_fid"):
        assert [step for step, _ in logged[key]] == [5, 10], key
    assert "eval_best" not in logged and "partial" not in logged
    assert scalar_tag("loss_d") == "losses/loss_d" and scalar_tag("eval_fid").startswith("eval")

    images = accumulator.Images("samples")
    assert [e.step for e in images] == [5, 10]
    for event in images:  # the very pictures of samples/
        with Image.open(run.path / "samples" / f"step_{event.step:07d}.png") as saved:
            assert np.array_equal(decoded(event), np.asarray(saved.convert("RGB")))

    family = run.load()
    for network in ("generator", "discriminator"):
        for name, parameter in family.networks[network].named_parameters():
            for kind in ("weights", "gradients"):
                histograms = accumulator.Histograms(f"{kind}/{network}/{name}")
                assert [e.step for e in histograms] == [5, 10]
                assert all(e.histogram_value.num == parameter.numel() for e in histograms)
    weights = accumulator.Histograms("weights/generator/net.0.weight")[-1].histogram_value
    final = family.networks["generator"].net[0].weight.detach()  # the newest checkpoint is step 10
    assert weights.min == pytest.approx(float(final.min())) and weights.max == pytest.approx(
        float(final.max())
    )


def test_without_the_flag_there_is_no_tensorboard_folder(trained_run):
    assert not (trained_run.path / "tensorboard").exists()
    assert (trained_run.path / "metrics.jsonl").is_file()


def test_a_resumed_run_appends_and_drops_what_came_after_its_checkpoint(tiny_train):
    """A run that went past its newest checkpoint (a crash) leaves events after it; the
    resumed run writes them again, and TensorBoard must show each step once, as
    metrics.jsonl does."""
    options = {"sample_every": 5, "checkpoint_every": 10, "tensorboard": True}
    run = tiny_train(steps=15, **options)  # checkpoints at 10 and 15
    run.checkpoints[-1][1].unlink()  # resume from step 10: 15 is stale
    resumed = ganforge.train(resume=run.path, steps=20)
    accumulator = read_tensorboard(resumed)
    assert_same_scalars(resumed, accumulator)
    assert [step for step, _ in tensorboard_scalars(accumulator)["loss_d"]] == [5, 10, 15, 20]
    assert [e.step for e in accumulator.Images("samples")] == [5, 10, 15, 20]
    histograms = accumulator.Histograms("weights/discriminator/net.1.weight")
    assert [e.step for e in histograms] == [5, 10, 15, 20]
    assert len(list((resumed.path / "tensorboard").iterdir())) == 2  # appended, not rewritten


def test_tensorboard_is_a_logging_option(tiny_train):
    """Off or on, the training is the same: it stays out of the trajectory hash, may be
    switched on at --resume, and is a plain CLI switch."""
    assert TrainConfig(tensorboard=True).trajectory_hash() == TrainConfig().trajectory_hash()
    run = tiny_train(steps=5)
    resumed = ganforge.train(resume=run.path, steps=10, tensorboard=True)
    assert resumed.config.tensorboard is True
    logged = tensorboard_scalars(read_tensorboard(resumed))
    assert [step for step, _ in logged["loss_g"]] == [10]
    args = build_parser().parse_args(["train", "--tensorboard"])
    assert args.tensorboard is True


def test_without_the_package_the_flag_fails_at_once(tiny_train, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(GanforgeError, match=r"^--tensorboard: .*pip install 'ganforge\["):
        tiny_train(tensorboard=True)
    assert not (tmp_path / "run").exists()  # nothing was started
    assert tiny_train(tensorboard=False).step == 10


def test_record_scalars_are_the_numbers_of_a_record():
    record = {"step": 5, "loss_d": 1, "eval_best": True, "partial": True, "note": "x", "r1": 0.5}
    assert record_scalars(record) == {"loss_d": 1.0, "r1": 0.5}
    assert [scalar_tag(k) for k in ("d_fake", "weight_norm_generator", "r1", "elapsed_s")] == [
        "discriminator/d_fake",
        "weight_norms/weight_norm_generator",
        "penalties/r1",
        "training/elapsed_s",
    ]


def test_histograms_are_measured_where_the_tensors_are_and_skip_non_finite_ones():
    values = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    found = histograms(
        {
            "spread": values,
            "constant": torch.ones(3, 4),
            "broken": torch.tensor([1.0, float("nan")]),
            "empty": torch.zeros(0),
        },
        bins=10,
    )
    assert set(found) == {"spread", "constant"}
    spread = found["spread"]
    counts, edges = np.histogram(values.numpy(), bins=10)
    assert spread["bucket_counts"] == counts.tolist()
    assert spread["bucket_limits"] == pytest.approx(edges[1:].tolist(), abs=1e-6)
    assert (spread["min"], spread["max"]) == (values.min().item(), values.max().item())
    assert spread["num"] == 1000 and spread["sum"] == pytest.approx(values.sum().item(), abs=1e-4)
    assert spread["sum_squares"] == pytest.approx((values**2).sum().item(), rel=1e-6)
    constant = found["constant"]
    assert (constant["bucket_limits"], constant["bucket_counts"]) == ([1.0], [12.0])

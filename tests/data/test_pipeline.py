"""Real batches for training: one uint8 tensor or a streamed folder give the same batches in
the seeded order, with or without workers; flips are seeded by (seed, epoch) and survive a
resume; a run on a streamed, flipped folder resumes bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import ganforge
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.data import RealBatches, load_dataset, open_dataset, to_model_range
from ganforge.data.augment import hflip_decisions
from ganforge.data.folder import open_image_folder
from ganforge.training.batches import EpochBatches


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """40 real digits as 28x28 PNGs in class folders 0/ ... 9/."""
    root = tmp_path_factory.mktemp("digit-pngs")
    digits = load_dataset("digits")
    for i in range(40):
        label = int(digits.labels[i])
        (root / str(label)).mkdir(exist_ok=True)
        Image.fromarray(digits.images[i, 0].numpy()).save(root / str(label) / f"{i:03d}.png")
    return root


def draw(batches: RealBatches, n: int) -> list[dict[str, torch.Tensor]]:
    return [batches.next() for _ in range(n)]


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x["images"], y["images"]) and torch.equal(x["labels"], y["labels"])


def test_in_memory_batches_follow_the_seeded_order(digits):
    order = EpochBatches(len(digits), 16, seed=3)
    batches = draw(RealBatches(digits, order), 5)
    expected_order = EpochBatches(len(digits), 16, seed=3)
    for batch in batches:
        indices = expected_order.next_indices()
        assert torch.equal(batch["images"], to_model_range(digits.images[indices]))
        assert torch.equal(batch["labels"], digits.labels[indices])
        assert batch["images"].dtype == torch.float32
    assert order.position == expected_order.position


@pytest.mark.parametrize("workers", [0, 2])
def test_a_streamed_folder_gives_the_same_batches(digit_folder, workers):
    loaded = load_dataset(str(digit_folder), resolution=16, channels=1)
    streamed = open_dataset(str(digit_folder), resolution=16, channels=1, cache="stream")
    assert not isinstance(streamed, type(loaded))
    # 40 images, batches of 8: 5 per epoch, so 12 batches cross two epoch boundaries
    memory = draw(RealBatches(loaded, EpochBatches(40, 8, seed=1), hflip=True, seed=1), 12)
    stream = RealBatches(
        streamed, EpochBatches(40, 8, seed=1), cache="stream", workers=workers, hflip=True, seed=1
    )
    try:
        assert_same_batches(memory, draw(stream, 12))
    finally:
        stream.close()


def test_restarting_from_a_position_replays_the_stream(digit_folder):
    folder = open_image_folder(digit_folder, 8, 1)
    straight = RealBatches(folder, EpochBatches(40, 8, seed=2), workers=0, hflip=True, seed=2)
    expected = draw(straight, 9)
    order = EpochBatches(40, 8, seed=2)
    resumed = RealBatches(folder, order, workers=0, hflip=True, seed=2)
    draw(resumed, 2)  # the loader has read ahead past this position
    position = order.position
    draw(resumed, 1)
    resumed.restart(EpochBatches(40, 8, seed=2, **position))
    assert_same_batches(expected[2:], draw(resumed, 7))


def test_flips_are_seeded_per_epoch_and_leave_the_global_rng_alone(digits):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    flips = hflip_decisions(seed=5, epoch=0, size=len(digits))
    assert torch.rand(3).tolist() == expected.tolist()
    assert torch.equal(flips, hflip_decisions(5, 0, len(digits)))
    assert not torch.equal(flips, hflip_decisions(5, 1, len(digits)))
    assert not torch.equal(flips, hflip_decisions(6, 0, len(digits)))
    assert 0.4 < flips.float().mean() < 0.6

    order = EpochBatches(len(digits), 32, seed=5)
    batch = RealBatches(digits, order, hflip=True, seed=5).next()
    indices = EpochBatches(len(digits), 32, seed=5).next_indices()
    plain = to_model_range(digits.images[indices])
    mirrored = flips[indices]
    assert torch.equal(batch["images"][mirrored], plain[mirrored].flip(-1))
    assert torch.equal(batch["images"][~mirrored], plain[~mirrored])


def test_stream_cache_is_for_folders_only(digits):
    with pytest.raises(GanforgeError, match="^--data-cache: stream"):
        RealBatches(digits, EpochBatches(len(digits), 8, 0), cache="stream")
    with pytest.raises(GanforgeError, match="^--data-cache: 'ram'"):
        open_dataset("digits", cache="ram")


def test_training_on_a_streamed_flipped_folder_resumes_bit_for_bit(
    tiny_train, digit_folder, without_wall_clock
):
    options = {
        "data": str(digit_folder),
        "resolution": 8,
        "channels": 1,
        "batch_size": 8,
        "hflip": True,
        "data_cache": "stream",
        "data_workers": 1,
        "log_every": 2,
    }
    straight = tiny_train("straight", steps=6, **options)
    half = tiny_train("half", steps=3, **options)
    resumed = ganforge.train(resume=half.path, steps=6, data_cache="cpu", data_workers=0)
    a = load_file(str(straight.checkpoints[-1][1]))
    b = load_file(str(resumed.checkpoints[-1][1]))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())
    assert np.array_equal(resumed.sample(4, seed=0), straight.sample(4, seed=0))


def test_a_corrupt_image_met_while_streaming_is_a_one_line_cli_error(tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    for i in range(4):
        Image.fromarray(noise[i]).save(folder / f"{i}.png")
    data = (folder / "3.png").read_bytes()
    (folder / "3.png").write_bytes(data[: len(data) * 2 // 3])  # the header still reads
    flags = ["--data", str(folder), "--resolution", "8", "--batch-size", "4", "--steps", "2"]
    args = ["train", "--model", "mlp", "--width", "8", "--z-dim", "4", "--no-progress", *flags]
    out = ["--out", str(tmp_path / "run"), "--data-cache", "stream", "--data-workers", "0"]
    assert main([*args, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: --data: cannot read image") and err.count("\n") == 1
    assert str(folder / "3.png") in err

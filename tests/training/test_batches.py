"""EpochBatches: seeded epoch permutations, drop-last batches, and exact restore from a position."""

from __future__ import annotations

import pytest
import torch

from ganforge.training.batches import EpochBatches


def draw(batches: EpochBatches, n: int) -> list[list[int]]:
    return [batches.next_indices().tolist() for _ in range(n)]


def test_each_epoch_is_a_permutation_without_repeats():
    batches = EpochBatches(size=10, batch_size=3, seed=0)
    assert batches.batches_per_epoch == 3  # the last, short batch is dropped
    epoch0 = draw(batches, 3)
    assert all(len(b) == 3 for b in epoch0)
    flat = [i for b in epoch0 for i in b]
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))
    assert batches.position == {"epoch": 0, "batch": 3}
    epoch1 = draw(batches, 3)
    assert batches.position == {"epoch": 1, "batch": 3}
    assert len({i for b in epoch1 for i in b}) == 9
    assert epoch0 != epoch1  # a new order each epoch


def test_order_depends_on_the_seed_only():
    assert draw(EpochBatches(100, 10, seed=3), 25) == draw(EpochBatches(100, 10, seed=3), 25)
    assert draw(EpochBatches(100, 10, seed=3), 5) != draw(EpochBatches(100, 10, seed=4), 5)


def test_the_global_rng_is_not_used():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    draw(EpochBatches(50, 7, seed=1), 20)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("consumed", [0, 1, 4, 5, 6, 13])
def test_restoring_from_a_position_replays_the_same_order(consumed):
    # 23 images, batches of 4: 5 batches per epoch, so some positions sit on epoch boundaries
    original = EpochBatches(23, 4, seed=11)
    draw(original, consumed)
    position = original.position
    restored = EpochBatches(23, 4, seed=11, **position)
    assert restored.position == position
    assert draw(restored, 12) == draw(original, 12)


def test_a_fresh_object_at_epoch_k_matches_the_continuous_stream():
    continuous = EpochBatches(12, 4, seed=2)
    stream = draw(continuous, 9)  # three epochs of three batches
    assert draw(EpochBatches(12, 4, seed=2, epoch=2, batch=0), 3) == stream[6:9]

"""Data-parallel training (training/distributed.py): 2 processes on CPU with gloo compute what
one process computes with the same global batch, write the run folder once, and resume.

The equivalence needs batchnorm statistics of the global batch: the tiny runs use `mlp`, which
has no batchnorm (PyTorch's SyncBatchNorm, --sync-bn, runs on GPUs only). A `dcgan` without
--sync-bn equals one process whose batchnorm sees each process's slice alone.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import ganforge
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.models import build_model
from ganforge.training.batches import EpochBatches
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.distributed import (
    CPU_PROCESSES,
    Distributed,
    ShardedOrder,
    check_world,
    processes_for,
)

CPU = torch.device("cpu")


def test_shards_of_a_batch_make_the_global_batch_in_order():
    orders = [EpochBatches(100, 16, seed=3) for _ in range(3)]
    shards = [ShardedOrder(orders[rank], rank, 2) for rank in range(2)]
    for _ in range(10):  # across an epoch boundary (6 batches per epoch)
        whole = orders[2].next_indices()
        assert torch.equal(torch.cat([shard.next_indices() for shard in shards]), whole)
    assert shards[0].epoch == shards[1].epoch == orders[2].epoch == 1
    assert orders[0].position == orders[2].position


def test_every_process_draws_the_global_noise_and_keeps_its_slice():
    config = TrainConfig(model="mlp", width=8, z_dim=5)
    family = build_model(config, 8, 1)
    slices = []
    for rank in range(2):
        torch.manual_seed(0)
        with Distributed(rank=rank, world_size=2).global_noise(family):
            slices.append(family.sample_latent(3))
            fixed = family.sample_latent(3, generator=torch.Generator().manual_seed(1))
        assert fixed.shape == (3, 5)  # noise of its own generator is not sharded
    torch.manual_seed(0)
    assert torch.equal(torch.cat(slices), family.sample_latent(6))
    assert "sample_latent" not in vars(family)  # the family's own method again


def test_one_process_is_a_plain_run():
    world = Distributed()
    values = {"loss": torch.tensor(2.0)}
    assert not world.active and world.is_main
    assert world.mean(values) is values
    assert world.any(True) and not world.any(False) and world.from_main(True)
    assert world.device(CPU) == CPU
    assert world.stand_ins(("generator",), {}) == {}


def test_what_a_data_parallel_run_needs_of_its_config():
    assert processes_for(TrainConfig(), CPU) == CPU_PROCESSES
    assert processes_for(TrainConfig(nproc_per_node=3), CPU) == 3
    with pytest.raises(GanforgeError, match="--batch-size: 63 .* 2 processes"):
        check_world(TrainConfig(batch_size=63), CPU, 2)
    with pytest.raises(GanforgeError, match="--sync-bn: .*GPUs only"):
        check_world(TrainConfig(sync_bn=True), CPU, 2)
    with pytest.raises(GanforgeError, match="--ddp: needs 2 or more processes"):
        ganforge.train(model="mlp", data="digits", ddp=True, nproc_per_node=1)


def _networks(run: ganforge.Run) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run.checkpoints[-1][1])
    return {k: v for k, v in tensors.items() if k.startswith("networks.")}


def _assert_close(ddp: dict, single: dict) -> None:
    assert ddp.keys() == single.keys()
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], rtol=1e-4, atol=1e-5, msg=name)


def _records(run: ganforge.Run, strip) -> list[dict]:
    return strip(run.metrics())


def _assert_records_close(ddp: list[dict], single: list[dict]) -> None:
    assert [r["step"] for r in ddp] == [r["step"] for r in single]
    for mine, theirs in zip(ddp, single):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert mine[key] == pytest.approx(value, rel=1e-3, abs=1e-4), (mine["step"], key)


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process_and_resumes(
    tmp_path, tiny_options, without_wall_clock
):
    """2 gloo processes, each with 8 of the 16 images of a global batch: the same weights,
    EMA, optimiser state and records as one process, to float rounding; one metrics.jsonl
    without duplicates; and the DDP run resumes (in 2 processes again) where it stopped."""
    options = {**tiny_options, "steps": 8, "log_every": 3, "checkpoint_every": 4}
    single = ganforge.train(**options, out=str(tmp_path / "single"))

    ddp = ganforge.train(**{**options, "steps": 4}, out=str(tmp_path / "ddp"), ddp=True)
    assert json.loads((ddp.path / "config.json").read_text())["ddp"] is True
    assert [step for step, _ in ddp.checkpoints] == [4]
    ganforge.train(resume=ddp.path, steps=8)  # the saved config says --ddp: 2 processes again

    _assert_close(_networks(ddp), _networks(single))
    tensors, _ = load_checkpoint(ddp.checkpoints[-1][1])
    reference, _ = load_checkpoint(single.checkpoints[-1][1])
    optimizer_state = {k: v for k, v in reference.items() if k.startswith("optimizers.")}
    _assert_close({k: tensors[k] for k in optimizer_state}, optimizer_state)
    # rank 0 alone writes: one record per --log-every (and the end), none twice
    lines = (ddp.path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [3, 6, 8]
    _assert_records_close(_records(ddp, without_wall_clock), _records(single, without_wall_clock))
    assert (ddp.path / "samples" / "final.png").is_file()
    assert sorted(p.name for p in (ddp.path / "checkpoints").iterdir()) == [
        "step_0000004.safetensors",
        "step_0000008.safetensors",
    ]


@pytest.mark.slow
def test_torchrun_starts_a_data_parallel_run(tmp_path):
    """`torchrun --nproc-per-node 2 -m ganforge train ...`: the processes find each other from
    torchrun's environment; the run folder is written, and its summary printed, once."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command += ["--standalone", "-m", "ganforge", "train", "--model", "mlp", "--data", "digits"]
    command += ["--width", "8", "--z-dim", "8", "--batch-size", "16", "--steps", "4"]
    command += ["--log-every", "2", "--n-grid", "16", "--no-progress", "--out", "run"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run: run (step 4)") == 1
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [record["step"] for record in records] == [2, 4]
    assert not json.loads((tmp_path / "run" / "config.json").read_text())["ddp"]


def _per_slice_batchnorm(slices: int):
    """Batchnorm in training mode that normalises each of `slices` equal parts of its batch
    with that part's own statistics: what each of `slices` processes does with its slice."""
    from torch.nn.modules.batchnorm import _BatchNorm

    original = _BatchNorm.forward

    def forward(self, x):
        if not self.training:
            return original(self, x)
        return torch.cat([original(self, part) for part in x.chunk(slices)])

    return _BatchNorm, forward


def _parameters(run: ganforge.Run) -> dict[str, torch.Tensor]:
    """The networks' weights, without batchnorm's running statistics (buffers, which each
    process updates from its own slice and only eval mode reads)."""
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v for k, v in _networks(run).items() if not k.endswith(buffers)}


@pytest.mark.slow
def test_ddp_without_sync_bn_normalises_each_slice_alone(tmp_path, tiny_options, monkeypatch):
    """README (Many processes): without --sync-bn each process normalises with its own
    slice's statistics. A dcgan (batchnorm in G and D) on 2 processes equals one process
    whose batchnorm sees each half of every batch alone, and not the one-process run whose
    batchnorm sees the whole batch."""
    options = {**tiny_options, "model": "dcgan", "resolution": 16, "steps": 3, "device": "cpu"}
    ddp = _parameters(ganforge.train(**options, out=str(tmp_path / "ddp"), ddp=True))
    whole = _parameters(ganforge.train(**options, out=str(tmp_path / "whole")))
    batchnorm, per_slice = _per_slice_batchnorm(2)
    monkeypatch.setattr(batchnorm, "forward", per_slice)
    halves = _parameters(ganforge.train(**options, out=str(tmp_path / "halves")))
    monkeypatch.undo()
    _assert_close(ddp, halves)
    # ...a different run from the global batch's, by much more than float rounding
    apart = max((ddp[k] - whole[k]).abs().max().item() for k in whole)
    assert apart > 1e-3

"""Data-parallel training: one process per GPU (or a few on CPU), each with a shard of every
global batch, gradients averaged by DistributedDataParallel (NCCL on GPUs, gloo on CPU).

    torchrun --nproc-per-node 4 -m ganforge train --model dcgan --data cifar10
    ganforge train --ddp --nproc-per-node 2 ...     # the same, launched by ganforge itself

A run of N processes computes what one process computes with the same --batch-size (the
global batch), to float rounding, as long as batchnorm statistics are those of the global
batch too (--sync-bn; models without batchnorm need nothing):
- every process draws the same batch order and takes its rank's slice of each batch;
- every process seeds the same random generator and draws the noise of the whole batch, of
  which it keeps its slice, so the generators of all processes stay in step (and rank 0's
  state, saved in checkpoints, is everyone's). Other random draws inside a phase (DiffAugment,
  instance noise, gradient-penalty mixing) are per slice: alike in every process;
- the networks a phase trains are wrapped in DistributedDataParallel for that phase only (a
  GAN's D and G are each called in both phases, and the frozen one must not wait for
  gradients); logged statistics are averaged over processes when a record is written.
Rank 0 alone writes the run folder (config, metrics.jsonl, events, checkpoints, grids) and
evaluates; decisions taken on one rank (stop, early stop, a late checkpoint) are shared.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganforge.config import TrainConfig, flag_name
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily
from ganforge.training import fast_paths

CPU_PROCESSES = 2  # --nproc-per-node 0 on a machine without GPUs


def launched() -> bool:
    """Whether this process is one of several started by torchrun or by `launch`."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def processes_for(config: TrainConfig, device: torch.device) -> int:
    """--nproc-per-node, or (0) one process per visible GPU, or CPU_PROCESSES on CPU."""
    if config.nproc_per_node:
        return config.nproc_per_node
    return torch.cuda.device_count() if device.type == "cuda" else CPU_PROCESSES


class ShardedOrder:
    """The global batch order (an EpochBatches), of which this process takes its rank's slice
    of each batch. Position and epoch are the global order's."""

    def __init__(self, order, rank: int, world_size: int):
        self.order, self.rank, self.world_size = order, rank, world_size

    @property
    def epoch(self) -> int:
        return self.order.epoch

    @property
    def size(self) -> int:
        return self.order.size

    def next_indices(self) -> torch.Tensor:
        indices = self.order.next_indices()
        share = len(indices) // self.world_size
        return indices[self.rank * share : (self.rank + 1) * share]


# No broadcast of buffers before each forward: batchnorm running statistics are only read in
# eval mode (samples, evaluation), on rank 0, whose own are the ones saved (torch >= 2.13
# renamed the option).
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


class _PhaseDDP(DistributedDataParallel):
    """DistributedDataParallel that names the problem when a family calls a method of the
    network other than forward (DDP would not average the gradients of such a call)."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if hasattr(self.module, name):
                raise GanforgeError(
                    f"--ddp: this model calls `{name}` of a network it trains, not its "
                    "forward, which DistributedDataParallel cannot average; train it in one "
                    "process"
                ) from None
            raise


class Distributed:
    """This process's place in a run: rank, world size, device, and the few collective
    operations the loop needs. With world size 1 (a plain run) every method is a no-op."""

    def __init__(
        self, rank: int = 0, world_size: int = 1, local_rank: int = 0, local_size: int = 1
    ):
        self.rank, self.world_size = rank, world_size
        self.local_rank, self.local_size = local_rank, local_size
        self.owns_group = False
        self._control = None  # a gloo group for host-side flags when the main one is NCCL
        self._wrapped: dict[str, nn.Module] = {}

    @classmethod
    def start(cls, config: TrainConfig, device: torch.device) -> Distributed:
        """From torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT): join
        the process group (NCCL for CUDA, gloo otherwise); a plain run without it."""
        if not launched():
            return cls()
        env = os.environ
        world = cls(
            int(env["RANK"]),
            int(env["WORLD_SIZE"]),
            int(env.get("LOCAL_RANK", env["RANK"])),
            int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])),
        )
        check_world(config, device, world.world_size)
        if device.type == "cuda":
            torch.cuda.set_device(world.local_rank)
        else:
            torch.set_num_threads(fast_paths.cpu_threads(world.local_size))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            world.owns_group = True
        if dist.get_backend() != "gloo":
            world._control = dist.new_group(backend="gloo")
        return world

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This process's GPU (its local rank) when the run is on CUDA."""
        if not self.active or device.type != "cuda":
            return device
        return torch.device("cuda", self.local_rank)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    # ---- the model -------------------------------------------------------------------------
    def sync_batchnorm(self, networks: nn.ModuleDict) -> None:
        """--sync-bn: SyncBatchNorm in place of batchnorm, with the same parameter names (so
        the same checkpoints); statistics of the global batch in training mode."""
        if self.active:
            for name in list(networks):
                networks[name] = nn.SyncBatchNorm.convert_sync_batchnorm(networks[name])

    def wrap(
        self, networks: nn.ModuleDict, trained: list[str], compiled: dict[str, nn.Module]
    ) -> None:
        """A DistributedDataParallel wrapper for each network a phase trains (around its
        compiled form, with --compile). Every process builds them in the same order: each
        construction broadcasts rank 0's weights."""
        if not self.active:
            return
        # a channels-last weight with one input or output channel has strides autograd's
        # gradient does not copy: DDP says so (a copy into its bucket, nothing more)
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
        for name in trained:
            network = compiled.get(name, networks[name])
            device_ids = [network_device(network).index] if self._on_cuda(network) else None
            self._wrapped[name] = _PhaseDDP(network, device_ids=device_ids, **_NO_BUFFER_SYNC)

    def stand_ins(self, trains: tuple[str, ...], compiled: dict[str, nn.Module]) -> dict:
        """The modules a phase calls in place of the plain networks: the DDP wrapper of each
        network it trains, the compiled form of the others (--compile); {} for a plain
        one-process run without --compile."""
        found = dict(compiled)
        found.update({name: self._wrapped[name] for name in trains if name in self._wrapped})
        return found

    @staticmethod
    def _on_cuda(network: nn.Module) -> bool:
        return network_device(network).type == "cuda"

    @contextlib.contextmanager
    def global_noise(self, family: ModelFamily) -> Iterator[None]:
        """Inside a phase, the family's noise is drawn for the whole global batch in every
        process (the same draw, the generators being in step), and each keeps its slice."""
        if not self.active:
            yield
            return
        draw = family.sample_latent
        rank, world = self.rank, self.world_size

        def sample_latent(n, generator=None, device="cpu"):
            if generator is not None:  # fixed noise from its own generator: not sharded
                return draw(n, generator=generator, device=device)
            return draw(n * world, device=device)[rank * n : (rank + 1) * n]

        family.sample_latent = sample_latent
        try:
            yield
        finally:
            del family.sample_latent

    # ---- collectives -----------------------------------------------------------------------
    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each tensor averaged over processes (one all-reduce of them all, stacked)."""
        if not self.active or not values:
            return values
        stacked = torch.stack([value.detach().float().reshape(()) for value in values.values()])
        dist.all_reduce(stacked)
        stacked /= self.world_size
        return {key: total.to(value.dtype) for (key, value), total in zip(values.items(), stacked)}

    def minimum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise minimum over processes."""
        if self.active:
            dist.all_reduce(values, op=dist.ReduceOp.MIN)
        return values

    def any(self, flag: bool) -> bool:
        """Whether `flag` holds in any process (a signal seen by one, a clock that ran out)."""
        if not self.active:
            return flag
        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self._control)
        return bool(value.item())

    def from_main(self, flag: bool) -> bool:
        """Rank 0's `flag`, in every process."""
        if not self.active:
            return flag
        value = torch.tensor([int(flag)])
        dist.broadcast(value, src=0, group=self._control)
        return bool(value.item())

    def barrier(self) -> None:
        if self.active:
            dist.barrier(group=self._control)


def check_world(config: TrainConfig, device: torch.device, world_size: int) -> None:
    """What a run of `world_size` processes needs of its config."""
    if config.batch_size % world_size:
        raise GanforgeError(
            f"--batch-size: {config.batch_size} (the global batch) does not split evenly "
            f"over {world_size} processes"
        )
    if config.sync_bn and device.type != "cuda":
        raise GanforgeError(
            "--sync-bn: PyTorch's SyncBatchNorm runs on GPUs only; on CPU train without it "
            "(each process then normalises with the statistics of its own slice)"
        )


def network_device(network: nn.Module) -> torch.device:
    first = next(network.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


# ---- `--ddp`: the local launcher ----------------------------------------------------------------


def launch(
    config: TrainConfig,
    run_dir: Path,
    resuming: bool,
    device: torch.device,
    fit: Callable[[TrainConfig, Path, bool], None],
) -> None:
    """Run `fit(config, run_dir, resuming)` (the loop's: one Trainer per process) in
    --nproc-per-node local processes, as torchrun would start them (its environment variables,
    a free local port), and wait for them. An error in any is raised here as that process's
    GanforgeError message. `fit` is a module-level function: spawn pickles it by name."""
    count = processes_for(config, device)
    if device.type == "cuda" and count > torch.cuda.device_count():
        raise GanforgeError(
            f"{flag_name('nproc_per_node')}: {count} processes for {torch.cuda.device_count()} GPUs"
        )
    if count < 2:
        raise GanforgeError(
            f"--ddp: needs 2 or more processes ({flag_name('nproc_per_node')} {count}); train "
            "without --ddp"
        )
    check_world(config, device, count)
    context = mp.get_context("spawn")
    errors = context.SimpleQueue()
    arguments = (count, _free_port(), config.to_dict(), str(run_dir), resuming, errors, fit)
    # Ctrl-C reaches the workers too: they finish the step, agree, save and stop; this
    # process waits for them instead of dying first.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        mp.start_processes(_worker, args=arguments, nprocs=count, start_method="spawn")
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as exc:
        messages = []
        while not errors.empty():
            messages.append(errors.get())
        if messages:
            raise GanforgeError(min(messages)[1]) from None
        raise GanforgeError(f"--ddp: training process {exc.error_index} failed: {exc}") from None
    finally:
        signal.signal(signal.SIGINT, previous)


def _worker(
    local_rank: int,
    count: int,
    port: int,
    config: dict,
    run_dir: str,
    resuming: bool,
    errors,
    fit: Callable[[TrainConfig, Path, bool], None],
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(count),
        LOCAL_WORLD_SIZE=str(count),
    )
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the Trainer's own handler takes over
    try:
        fit(TrainConfig.from_dict(config), Path(run_dir), resuming)
    except GanforgeError as exc:
        errors.put((local_rank, str(exc)))
        sys.exit(2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

"""The fast paths: what makes a training step cheaper while it computes the same thing (to
float rounding). The loop asks here, once, what this device can do:

- fused optimisers (one kernel for every parameter; CUDA, and CPU for Adam), else foreach ones;
- channels-last memory for convolutional networks (CUDA, and CPU with oneDNN: measured faster
  on both, docs/reference/speed), with the real images handed over in the same layout;
- `torch.backends.cudnn.benchmark` (cuDNN picks the fastest convolution for each shape);
- `--compile`: torch.compile of each network, kept apart from the network itself, so that
  checkpoints keep their key names (a compiled module's would start with `_orig_mod.`);
- `--precision bf16|fp16`: autocast, and for fp16 one gradient scaler per phase;
- CPU threads: the cores this process may use, shared among the local processes of a run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from ganforge.errors import GanforgeError
from ganforge.models.family import Phase

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def configure_backends(device: torch.device) -> None:
    """Process-wide switches for training on `device`."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def cpu_threads(local_processes: int = 1, cores: int | None = None) -> int:
    """Intra-op threads for one of `local_processes` training processes on this machine: the
    cores this process may run on, shared evenly (at least 1). OMP_NUM_THREADS, when set, wins."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, local_processes))


def optimizer_options(optimizer: type[torch.optim.Optimizer], device: torch.device) -> dict:
    """The fastest implementation `optimizer` offers on `device`: fused where torch has the
    kernel (Adam on CUDA and CPU, SGD on CUDA), else foreach (one launch per op, not per
    parameter)."""
    fused_devices = {torch.optim.Adam: ("cuda", "cpu"), torch.optim.SGD: ("cuda",)}
    if device.type in fused_devices.get(optimizer, ()):
        return {"fused": True}
    return {"foreach": True}


def fastest(
    optimizer: type[torch.optim.Optimizer], params: list[nn.Parameter], **settings
) -> torch.optim.Optimizer:
    """`optimizer(params, **settings)` in the implementation optimizer_options picks for the
    parameters' device, or foreach where this torch lacks that kernel (CPU fused Adam came
    with torch 2.4)."""
    device = params[0].device if params else torch.device("cpu")
    try:
        return optimizer(params, **settings, **optimizer_options(optimizer, device))
    except (RuntimeError, TypeError, ValueError):
        return optimizer(params, **settings, foreach=True)


def uses_convolutions(network: nn.Module) -> bool:
    return any(isinstance(layer, nn.modules.conv._ConvNd) for layer in network.modules())


def wants_channels_last(networks: Iterable[nn.Module], device: torch.device) -> bool:
    """Whether convolutions run faster channels-last here: on CUDA (tensor cores), and on a
    CPU with oneDNN; only for networks that convolve."""
    fast_here = device.type == "cuda" or (
        device.type == "cpu" and torch.backends.mkldnn.is_available()
    )
    return fast_here and any(uses_convolutions(network) for network in networks)


def to_channels_last(networks: Iterable[nn.Module]) -> None:
    """Convolutional networks' 4-D weights to channels-last, in place (state_dict unchanged)."""
    for network in networks:
        if uses_convolutions(network):
            network.to(memory_format=torch.channels_last)


def channels_last_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A batch's images (and a pair's sources) in channels-last memory, like the networks."""
    return {
        key: value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value
        for key, value in batch.items()
    }


def compiled_networks(networks: nn.ModuleDict) -> dict[str, nn.Module]:
    """torch.compile of each network, sharing its parameters. The networks themselves stay as
    they are (the checkpoints' key names too); the loop calls the compiled ones in its phases.
    An unusable torch.compile (no C++ compiler, an unsupported Python) is one clear error."""
    try:
        probe = torch.compile(lambda x: x * 2 + 1)
        probe(torch.ones(2))
    except Exception as exc:  # anything dynamo or inductor raise: say it in one line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanforgeError(
            f"--compile: torch.compile does not work here ({type(exc).__name__}: "
            f"{reason[:200]}); train without --compile"
        ) from None
    return {name: torch.compile(network) for name, network in networks.items()}


@contextlib.contextmanager
def substituted(networks: nn.ModuleDict, stand_ins: dict[str, nn.Module]) -> Iterator[None]:
    """For one phase, let `networks[name]` be `stand_ins[name]` (a compiled or a
    DistributedDataParallel wrapper of the same parameters): the family calls the stand-in;
    the ModuleDict holds the plain networks again afterwards, for checkpoints and sampling."""
    if not stand_ins:
        yield
        return
    originals = {name: networks[name] for name in stand_ins}
    for name, stand_in in stand_ins.items():
        networks[name] = stand_in
    try:
        yield
    finally:
        for name, network in originals.items():
            networks[name] = network


class Precision:
    """--precision: autocast on `device` in bf16 or fp16 (fp32: nothing), and for fp16 a
    gradient scaler per phase (torch.amp.GradScaler), saved in checkpoints.

    fp16 needs CUDA (CPU autocast has no fp16 kernels worth having); bf16 runs on CUDA GPUs
    that support it and on any CPU, where it is fast only with bf16 instructions (AMX,
    AVX512-BF16) and otherwise slower than fp32 (docs/reference/speed).
    """

    def __init__(self, name: str, device: torch.device, phases: Iterable[Phase]):
        if name == "fp16" and device.type != "cuda":
            raise GanforgeError(
                f"--precision fp16: needs a CUDA device, not {device.type} (on CPU use bf16 "
                "or fp32)"
            )
        if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise GanforgeError("--precision bf16: this GPU has no bfloat16; use fp16 or fp32")
        self.name, self.device = name, device
        self.dtype = AUTOCAST_DTYPES.get(name)
        self.scalers = (
            {phase.name: torch.amp.GradScaler(device.type) for phase in phases}
            if name == "fp16"
            else {}
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def float_stats(self, stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logged statistics in float32 (autocast may leave some in 16 bits: sums of them
        over --log-every steps would round)."""
        if self.dtype is None:
            return stats
        return {key: value.float() for key, value in stats.items()}

    def backward(self, phase: str, loss: torch.Tensor) -> None:
        scaler = self.scalers.get(phase)
        (scaler.scale(loss) if scaler is not None else loss).backward()

    def unscale(self, phase: str, optimizers: list[torch.optim.Optimizer]) -> None:
        """Make the gradients true gradients before they are read (gradient norms)."""
        scaler = self.scalers.get(phase)
        if scaler is not None:
            for optimizer in optimizers:
                scaler.unscale_(optimizer)

    def step(self, phase: str, optimizers: list[torch.optim.Optimizer]) -> None:
        """Step the optimisers; with a scaler, a step whose gradients overflowed is skipped
        and the scale shrinks (fused optimisers check on the device, without a host sync)."""
        scaler = self.scalers.get(phase)
        for optimizer in optimizers:
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)
        if scaler is not None:
            scaler.update()

    # ---- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, dict]:
        """The scalers' state (JSON numbers), by phase; {} without scalers."""
        return {phase: dict(scaler.state_dict()) for phase, scaler in self.scalers.items()}

    def load_state_dict(self, saved: dict | None) -> None:
        """Continue from a checkpoint's scalers (passed checkpoint.check_metadata); one it
        lacks (a run that changed --precision on resume) starts afresh."""
        for phase, scaler in self.scalers.items():
            if saved and phase in saved:
                scaler.load_state_dict(saved[phase])

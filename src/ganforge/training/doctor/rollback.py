"""Recovery from a step whose loss or weights stopped being finite.

Every step's losses are checked for NaN/infinity on the device without a host sync (`watch`);
the check is read, with the weights' finiteness, only on steps that write something (`check`).
A bad step rolls training back to an in-memory `snapshot` of the last good such step, with
smaller learning rates, and goes on with the next batches: the ones since the snapshot, the
bad one among them, are skipped, not replayed."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from ganforge.config import TrainConfig, flag_name
from ganforge.errors import GanforgeError
from ganforge.explanations import explained
from ganforge.i18n import N_, _
from ganforge.models import ModelFamily
from ganforge.training.doctor.events import Event, EventLog
from ganforge.training.doctor.events import lr_text as _lr
from ganforge.training.doctor.signals import weight_norm


class Rollback:
    """The NaN watch, the last good state, and the count of rollbacks (saved in checkpoints)."""

    def __init__(self, config: TrainConfig, family: ModelFamily, events: EventLog):
        self.config = config
        self.family = family
        self.events = events
        self.rollbacks = 0
        self._first_bad: dict[str, torch.Tensor] = {}  # phase -> first step with a bad loss
        self._snapshot: tuple[dict[str, torch.Tensor], dict] | None = None

    @property
    def has_snapshot(self) -> bool:
        return self._snapshot is not None

    def watch(self, phase: str, loss: torch.Tensor, step: int) -> None:
        """Remember, on the device and without a sync, the first step whose `phase` loss was
        NaN or infinite."""
        first = self._first_bad.get(phase)
        if first is None:
            first = torch.full((), -1, dtype=torch.int64, device=loss.device)
        bad = ~torch.isfinite(loss.detach())
        self._first_bad[phase] = torch.where(bad & (first < 0), step, first)

    def check(
        self,
        networks: nn.ModuleDict,
        minimum: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> str | None:
        """What went wrong since the last check (one host sync), or None: a NaN or infinite
        loss, or weights that are no longer finite (a bad gradient shows up there). In a
        data-parallel run, `minimum` (over processes) makes every process find the same."""
        phases = list(self._first_bad)
        # the first bad step of each phase (infinity: none), then 1/0 for finite weights
        firsts = [self._first_bad[p].double() for p in phases]
        flags = [torch.where(first < 0, math.inf, first) for first in firsts]
        for network in networks.values():
            flags.append(torch.isfinite(weight_norm(network)).double())
        stacked = torch.stack([flag.double().to(flags[0].device) for flag in flags])
        values = (minimum(stacked) if minimum is not None else stacked).tolist()
        self._first_bad.clear()
        bad = [(first, phase) for phase, first in zip(phases, values) if first < math.inf]
        if bad:
            first, phase = min(bad)
            return _("the {phase} loss was NaN or infinite at step {step}").format(
                phase=phase, step=int(first)
            )
        for name, finite in zip(networks, values[len(phases) :]):
            if not finite:
                return _("the {network}'s weights are no longer finite").format(network=name)
        return None

    def snapshot(self, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
        """Keep a copy (on the tensors' device) of a training state that passed `check`."""
        self._snapshot = (
            {name: t.detach().clone() for name, t in tensors.items()},
            copy.deepcopy(metadata),
        )

    def roll_back(self, problem: str, step: int) -> tuple[dict[str, torch.Tensor], dict]:
        """The snapshot to load after `problem` at `step`, with every learning rate times
        --nan-lr-factor; writes a `rollback` event. Raises after --max-rollbacks of them."""
        config = self.config
        if self._snapshot is None or self.rollbacks >= config.max_rollbacks:
            raise GanforgeError(
                f"training diverged: {problem} (detected at step {step}), after "
                f"{self.rollbacks} rollbacks (--max-rollbacks {config.max_rollbacks}); the "
                "checkpoints on disk are from before it: lower --lr-g/--lr-d, or try "
                "--spectral-norm or --gp 10"
            )
        self.rollbacks += 1
        tensors, stored = self._snapshot
        tensors = {name: t.clone() for name, t in tensors.items()}
        learning_rates = {}
        # lowered in the snapshot itself: a second rollback to it lowers them again
        for name, optimizer in stored["optimizers"].items():
            for group in optimizer["param_groups"]:
                group["lr"] *= config.nan_lr_factor
                if "base_lr" in group:  # --lr-decay/--lr-warmup scale the lowered rate
                    group["base_lr"] *= config.nan_lr_factor
                learning_rates[f"lr_{name}"] = group["lr"]
        stored["doctor"]["rollbacks"] = self.rollbacks
        metadata = copy.deepcopy(stored)
        back_to = metadata["step"]
        remedies = [
            f"{flag_name(self.family.learning_rate_option(name[3:]))} {_lr(lr)}"
            for name, lr in learning_rates.items()
        ]
        evidence = {
            "detected_at_step": step,
            "returned_to_step": back_to,
            "rollbacks": self.rollbacks,
            "max_rollbacks": config.max_rollbacks,
            **learning_rates,
            **explained(
                N_(
                    "{problem}; training went back to step {step} with learning rates x{factor:g} "
                    "and skipped the batches since."
                ),
                problem=f"{problem[0].upper()}{problem[1:]}",
                step=back_to,
                factor=config.nan_lr_factor,
            ),
        }
        self.events.write(
            Event(step, "rollback", evidence, remedies + ["--spectral-norm", "--gp 10"])
        )
        return tensors, metadata

"""What a training run is at a step, and so what a checkpoint holds and restores: the family's
networks, their EMA copies, the optimisers, the gradient scalers, the step, the data position,
the random generator, the logbook's unfinished interval, the evaluator's best and the doctor's
state. An exact resume needs all of it (docs/run-folder)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganforge.checkpoint_file import (
    CheckpointMismatch,
    expected_tensors,
    pack_module,
    unpack_module,
)
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily
from ganforge.run import EMA_SUFFIX
from ganforge.training import checkpoint as ckpt
from ganforge.training.batches import EpochBatches
from ganforge.training.doctor import Doctor
from ganforge.training.ema import WeightAverage
from ganforge.training.evaluation import TrainingEvaluator
from ganforge.training.fast_paths import Precision
from ganforge.training.logbook import Logbook

FAMILY_PREFIX = "family."  # the tensors of a family's own state (ModelFamily.training_state)


class TrainingState:
    """The resumable state of one run; `contents` packs it for a checkpoint, `load` puts a
    checkpoint's back. `averages` holds one EMA copy per network of `family.averaged` (none
    without --ema-decay), saved as `networks.<name>_ema`."""

    def __init__(
        self,
        config: TrainConfig,
        family: ModelFamily,
        optimizers: dict[str, torch.optim.Optimizer],
        averages: dict[str, WeightAverage],
        precision: Precision,
        batches: EpochBatches,
        logbook: Logbook,
        evaluator: TrainingEvaluator | None,
        doctor: Doctor | None,
    ):
        self.config = config
        self.family = family
        self.optimizers = optimizers
        self.averages = averages
        self.precision = precision
        self.batches = batches  # the seeded batch order and its position
        self.logbook = logbook
        self.evaluator = evaluator
        self.doctor = doctor
        self.step = 0  # iterations done

    def sampling_network(self) -> nn.Module:
        """What samples are drawn from: the sampler's EMA copy, or the sampler without EMA."""
        sampler = self.family.sampler
        average = self.averages.get(sampler)
        return average.network if average is not None else self.family.networks[sampler]

    def update_averages(self) -> None:
        """Move each EMA copy towards its network (after an iteration, at `step`)."""
        for name, average in self.averages.items():
            average.update(self.family.networks[name], self.step)

    def networks(self) -> dict[str, nn.Module]:
        """Every network a checkpoint holds, by its name there (an EMA copy as <name>_ema)."""
        found: dict[str, nn.Module] = dict(self.family.networks.items())
        for name, average in self.averages.items():
            found[f"{name}{EMA_SUFFIX}"] = average.network
        return found

    # ---- into a checkpoint -----------------------------------------------------------------
    def contents(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything an exact resume needs: tensors, and JSON metadata. In a data-parallel run
        every process calls it (it averages the logbook's sums over processes)."""
        tensors: dict[str, torch.Tensor] = {}
        for name, network in self.networks().items():
            tensors.update(pack_module(f"networks.{name}", network))
        optimizer_meta = {}
        for name, optimizer in self.optimizers.items():
            opt_tensors, optimizer_meta[name] = ckpt.pack_optimizer(f"optimizers.{name}", optimizer)
            tensors.update(opt_tensors)
        tensors.update(ckpt.pack_rng())
        family_tensors, family_meta = self.family.training_state()
        tensors.update({f"{FAMILY_PREFIX}{k}": v for k, v in family_tensors.items()})
        log_tensors, log_meta = self.logbook.pack_pending()
        tensors.update(log_tensors)
        metadata = {
            "logbook": log_meta,
            "step": self.step,
            "config_hash": self.config.trajectory_hash(),
            "data_position": self.batches.position,
            "optimizers": optimizer_meta,
        }
        if family_meta:  # a run whose family keeps nothing writes what it always wrote
            metadata["family"] = family_meta
        if self.precision.scalers:
            metadata["scalers"] = self.precision.state_dict()
        if self.evaluator is not None:
            metadata["evaluation"] = self.evaluator.state.to_dict()
        if self.doctor is not None:
            metadata["doctor"] = self.doctor.state_dict()
        return tensors, metadata

    # ---- out of one --------------------------------------------------------------------------
    def load_newest(self, folder: Path, config_file: Path) -> dict:
        """Load the newest valid checkpoint of `folder` (the run of `config_file`); its metadata.
        A checkpoint of another config, or one whose state does not fit, is a --resume error."""
        expected = expected_tensors(self.networks())
        try:
            path, tensors, meta = ckpt.load_newest_valid(
                folder, complete=True, expected=expected, config_file=config_file
            )
        except CheckpointMismatch as exc:
            raise GanforgeError(f"--resume: {exc}") from None
        if meta["config_hash"] != self.config.trajectory_hash():
            raise GanforgeError(
                f"--resume: checkpoint '{path}' was written with a different config than "
                f"'{config_file}'"
            )
        try:
            self.load(tensors, meta)
        except GanforgeError as exc:  # the file is whole, but it is not this run's state
            raise GanforgeError(f"--resume: checkpoint '{path}': {exc}") from None
        return meta

    def load(self, tensors: dict[str, torch.Tensor], meta: dict, position: bool = True) -> None:
        """Every part of the state from a checkpoint whose metadata passed
        checkpoint.check_metadata(complete=True); with `position` False (a rollback), the RNG
        and the data order go on where they are."""
        for name, network in self.networks().items():
            unpack_module(f"networks.{name}", network, tensors)
        for name, optimizer in self.optimizers.items():
            if name not in meta["optimizers"]:
                raise GanforgeError(f"it lacks optimizers.{name}")
            ckpt.unpack_optimizer(
                f"optimizers.{name}", optimizer, tensors, meta["optimizers"][name]
            )
        if position:
            ckpt.unpack_rng(tensors)
            self.batches = EpochBatches(
                self.batches.size,
                self.config.batch_size,
                self.config.seed,
                epoch=meta["data_position"]["epoch"],
                batch=meta["data_position"]["batch"],
            )
        own = {
            name.removeprefix(FAMILY_PREFIX): tensor
            for name, tensor in tensors.items()
            if name.startswith(FAMILY_PREFIX)
        }
        self.family.load_training_state(own, meta.get("family", {}))
        self.precision.load_state_dict(meta.get("scalers"))
        self.logbook.restore_pending(tensors, meta["logbook"])
        if self.evaluator is not None:
            self.evaluator.restore(meta.get("evaluation"))
        if self.doctor is not None:
            self.doctor.load_state_dict(meta.get("doctor"))
        self.step = meta["step"]

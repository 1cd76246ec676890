"""Branching a run: train a changed config onwards from another run's checkpoint, as if the
run had been started with the change but had lived its history so far (`ganforge doctor RUN
--try` trains each remedy so). Resume refuses a changed trajectory; a fork is how it is
changed on purpose, and the branch says so in its fork.json.

What carries over is all of the state that still fits: the networks, their EMA copies, the
optimisers' moments, the step, the data position, the RNG, the doctor's and the evaluator's
state, and the records and events up to the branch's step (so its curves show the history).
A network whose shape the change alters (--pack widens D's input, --minibatch-std adds an
input to its last layer) starts afresh, with its optimiser; so does every optimiser when
--optimizer changes. A changed learning rate or beta takes effect at once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from ganforge.atomic import atomic_write_text
from ganforge.config import TrainConfig
from ganforge.run import EVENTS_FILE, METRICS_FILE, Run
from ganforge.training.checkpoint import load_checkpoint
from ganforge.training.doctor.events import truncate_events
from ganforge.training.logbook import truncate_records

FORK_FILE = "fork.json"  # in a branch: where it came from, and what changed
OPTIMIZER_SETTINGS = ("optimizer", "beta1", "beta2")  # a change here starts moments afresh
PLACES = ("out", "progress")  # where a branch goes and how it is shown: not changes


def changed_options(before: TrainConfig, after: TrainConfig) -> dict[str, Any]:
    """The options of `after` that differ from `before` (model options included)."""
    old, new = before.to_dict(), after.to_dict()
    return {
        name: value for name, value in new.items() if old.get(name) != value and name not in PLACES
    }


def fork_run(source: Run, checkpoint: Path | None, config: TrainConfig, run_dir: Path) -> Run:
    """Train `config` in the new folder `run_dir` from `source`'s `checkpoint` (None: from
    step 0, a new run of `config`) to `config.steps`; returns the branch's Run."""
    from ganforge.training.loop import Trainer  # the loop imports this module's neighbours

    trainer = Trainer(config, run_dir, resuming=False)
    try:
        provenance = {"source": str(source.path), "checkpoint": None, "step": 0, "fresh": []}
        if checkpoint is not None:
            tensors, meta = load_checkpoint(checkpoint)
            tensors, meta, fresh = fitted_state(trainer, tensors, meta, source.config)
            trainer.start_from(tensors, meta)
            rollbacks = (meta.get("doctor") or {}).get("rollbacks", 0)
            _carry_history(source.path, run_dir, trainer.state.step, rollbacks)
            provenance.update(checkpoint=checkpoint.name, step=meta["step"], fresh=fresh)
        provenance["changes"] = changed_options(source.config, config)
        atomic_write_text(run_dir / FORK_FILE, json.dumps(provenance, indent=1) + "\n")
    except BaseException:
        trainer.close()
        raise
    return trainer.fit()


def fitted_state(
    trainer, tensors: dict[str, torch.Tensor], meta: dict, before: TrainConfig
) -> tuple[dict[str, torch.Tensor], dict, list[str]]:
    """The checkpoint's state made to fit the trainer's networks: each network (and its
    optimiser) the checkpoint cannot fill is taken from the trainer's fresh state instead,
    and the learning rates and betas are the new config's where it changed them. Returns the
    tensors, the metadata and the names of the networks started afresh."""
    state, config = trainer.state, trainer.config
    own_tensors, own_meta = state.contents()
    changes = changed_options(before, config)
    merged, meta = dict(tensors), json.loads(json.dumps(meta))  # a deep copy of plain JSON
    fresh = []
    for name in state.networks():
        prefix = f"networks.{name}."
        own = {key: value for key, value in own_tensors.items() if key.startswith(prefix)}
        theirs = {key for key in tensors if key.startswith(prefix)}
        if set(own) != theirs or any(tensors[k].shape != v.shape for k, v in own.items()):
            fresh.append(name)
            for key in theirs:
                del merged[key]
            merged.update(own)
    restart_all = any(option in changes for option in OPTIMIZER_SETTINGS)
    for name in state.optimizers:
        prefix = f"optimizers.{name}."
        if restart_all or name in fresh or name not in meta["optimizers"]:
            for key in [key for key in merged if key.startswith(prefix)]:
                del merged[key]
            merged.update({k: v for k, v in own_tensors.items() if k.startswith(prefix)})
            meta["optimizers"][name] = own_meta["optimizers"][name]
            continue
        option = state.family.learning_rate_option(name)
        for theirs, own in zip(
            meta["optimizers"][name]["param_groups"],
            own_meta["optimizers"][name]["param_groups"],
            strict=False,
        ):
            if option in changes:
                theirs["lr"] = own["lr"]
            if "base_lr" in own and (option in changes or "base_lr" not in theirs):
                theirs["base_lr"] = own["base_lr"]  # a schedule scales the new rate
    if meta.get("scalers") is not None and "precision" in changes:
        meta["scalers"] = own_meta.get("scalers")
    return merged, meta, fresh


def _carry_history(source: Path, branch: Path, step: int, rollbacks: int) -> None:
    """The source's records and events up to the branch's `step`, as the branch's own."""
    for name in (METRICS_FILE, EVENTS_FILE):
        if (source / name).is_file():
            shutil.copyfile(source / name, branch / name)
    truncate_records(branch / METRICS_FILE, step)
    truncate_events(branch / EVENTS_FILE, step, rollbacks)

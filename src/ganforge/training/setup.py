"""Building what a run trains with: its data, its model family on the device, one optimiser
per trained network, the EMA copies; and its run folder (new, or refused if it is not).

The order matters for an exact run: the seed is set, then the family is built (its random
initialisation), then everything else, so the same config gives the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.optim import Optimizer

from ganforge.atomic import atomic_write_text
from ganforge.config import TrainConfig, option_error
from ganforge.data import (
    IMAGES,
    POINTS,
    ImageDataset,
    ImageFolder,
    LoadOptions,
    PointSet,
    is_point_data,
    layout_for,
    list_datasets,
    open_dataset,
)
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily, build_model, model_kind, run_kind
from ganforge.run import CONFIG_FILE, SAMPLES_DIR
from ganforge.training import fast_paths
from ganforge.training.distributed import Distributed
from ganforge.training.ema import WeightAverage
from ganforge.training.optim import learning_rate, make_optimizer
from ganforge.training.run_lock import LOCK_FILE, RunLock
from ganforge.training.schedule import start_schedule

Dataset = ImageDataset | ImageFolder | PointSet


# ---- data ---------------------------------------------------------------------------------
def open_training_data(config: TrainConfig, run_dir: Path) -> tuple[TrainConfig, Dataset]:
    """The training set, and the config completed by it (resolution, channels, classes; the
    dimension of point data)."""
    layout = data_layout(config)
    dataset = open_dataset(
        config.data,
        resolution=config.resolution,
        channels=config.channels,
        strict=config.strict,
        options=LoadOptions(
            config.data_root, trust_pickle=config.trust_pickle, progress=config.progress
        ),
        cache=config.data_cache,
        layout=layout,
    )
    if layout == POINTS:
        config = config.replace(point_dims=dataset.dims, out=str(run_dir))
    else:
        config = config.replace(
            resolution=dataset.resolution,
            channels=dataset.channels,
            out=str(run_dir),
            **_condition_options(config, dataset),
        )
    _check_fits(config, dataset)
    return config, dataset


def data_layout(config: TrainConfig) -> str:
    """The layout of `--data` for `--model`: points for point data (a model of points only),
    else what the model's kind needs (single images, or a translator's pairs)."""
    if config.point_dims or is_point_data(config.data):
        run_kind(config.replace(point_dims=config.point_dims or 2))  # refuses an image model
        return POINTS
    return layout_for(model_kind(config.model).data)


def held_out(config: TrainConfig, dataset: Dataset) -> Dataset:
    """The held-out split (its "test" split) of a registered translation dataset (paired, or
    unpaired with its true pairs kept for scoring), for fixed examples the model never trains
    on; any other dataset itself."""
    layout = layout_for(run_kind(config).data)
    if layout in (IMAGES, POINTS) or config.data not in list_datasets(layout=layout):
        return dataset
    options = LoadOptions(config.data_root, split="test", trust_pickle=config.trust_pickle)
    return open_dataset(
        config.data,
        resolution=config.resolution,
        channels=config.channels,
        options=options,
        layout=layout,
    )


def _condition_options(config: TrainConfig, dataset: Dataset) -> dict:
    """What a conditional model records from its data: a class-conditional one, the number
    and names of the classes (every image must carry a label)."""
    if model_kind(config.model).data != "labelled":
        return {}
    if dataset.num_classes < 2 or bool((dataset.labels < 0).any()):
        raise GanforgeError(
            f"--model {config.model}: dataset '{config.data}' has no class label for every "
            "image (a folder needs one sub-folder per class)"
        )
    classes = config.num_classes or dataset.num_classes
    if classes < dataset.num_classes:
        raise GanforgeError(
            f"--num-classes: {classes} is fewer than the {dataset.num_classes} classes of "
            f"dataset '{config.data}'"
        )
    names = list(dataset.class_names) + [str(i) for i in range(dataset.num_classes, classes)]
    return {"num_classes": classes, "class_names": names}


def _check_fits(config: TrainConfig, dataset: Dataset) -> None:
    if config.batch_size > len(dataset):
        raise GanforgeError(
            f"--batch-size: {config.batch_size} is larger than dataset '{config.data}' "
            f"({len(dataset)} {'points' if isinstance(dataset, PointSet) else 'images'})"
        )


# ---- the model ------------------------------------------------------------------------------
def build_family(
    config: TrainConfig, device: torch.device, dist: Distributed
) -> tuple[ModelFamily, bool]:
    """The family, seeded, in training mode on `device` (SyncBatchNorm with --sync-bn), and
    whether its networks and batches are laid out channels-last (training/fast_paths.py)."""
    torch.manual_seed(config.seed)
    family = build_model(config, config.resolution, config.channels)
    if config.reuse_fakes and family.kept_fakes is None:
        raise option_error("reuse_fakes", f"{config.model}'s phases do not share their fakes")
    family.networks.to(device).train()
    if config.sync_bn:
        dist.sync_batchnorm(family.networks)
    channels_last = fast_paths.wants_channels_last(family.networks.values(), device)
    if channels_last:
        fast_paths.to_channels_last(family.networks.values())
    return family, channels_last


def build_optimizers(config: TrainConfig, family: ModelFamily) -> dict[str, Optimizer]:
    """One optimiser per network a phase trains, at the learning rate the family names (and
    the family is told them: --unroll steps D as its optimiser does)."""
    optimizers = {
        name: make_optimizer(config, family.networks[name], learning_rate(config, family, name))
        for phase in family.phases
        for name in phase.trains
    }
    start_schedule(config, optimizers.values())
    family.attach_optimizers(optimizers)
    return optimizers


def build_averages(config: TrainConfig, family: ModelFamily) -> dict[str, WeightAverage]:
    """An EMA copy of each network in `family.averaged` (none with --ema-decay 0)."""
    if config.ema_decay <= 0:
        return {}
    return {
        name: WeightAverage(family.networks[name], config.ema_decay) for name in family.averaged
    }


# ---- the run folder -------------------------------------------------------------------------
def create_run_dir(run_dir: Path, config: TrainConfig) -> RunLock:
    """A new run folder with its config.json, locked for this process (training/run_lock.py)."""
    refuse_existing_run(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanforgeError(f"--out: cannot create '{run_dir}': {exc.strerror}") from None
    lock = RunLock.acquire(run_dir, "--out")
    try:
        refuse_existing_run(run_dir)  # another run may have been written meanwhile
        (run_dir / SAMPLES_DIR).mkdir(exist_ok=True)
        write_config(run_dir, config)
    except BaseException:
        lock.release()
        raise
    return lock


def write_config(run_dir: Path, config: TrainConfig) -> None:
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    atomic_write_text(run_dir / CONFIG_FILE, text)


def refuse_existing_run(run_dir: Path) -> None:
    """--out must be a new or empty folder (its lock aside): a run is resumed, not
    overwritten, and a folder of the user's own files is never written into."""
    if (run_dir / CONFIG_FILE).exists():
        raise GanforgeError(
            f"--out: '{run_dir}' already holds a run; resume it with "
            f"`ganforge train --resume {run_dir}` or choose another --out"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise GanforgeError(f"--out: '{run_dir}' is a file, not a folder")
    try:
        others = run_dir.is_dir() and any(e.name != LOCK_FILE for e in run_dir.iterdir())
    except OSError as exc:
        raise GanforgeError(f"--out: cannot read folder '{run_dir}': {exc.strerror}") from None
    if others:
        raise GanforgeError(
            f"--out: folder '{run_dir}' is not empty and is not a ganforge run; give a new or "
            "empty folder"
        )

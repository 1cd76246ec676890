"""The training loop: phases, optimisers, EMA, logging, sample grids, checkpoints, resume.

It knows no architecture: the model family says which phases an iteration has, which network
each phase updates, and what each phase's loss is.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ganforge.atomic import atomic_write_text
from ganforge.config import RESUMABLE_OPTIONS, TrainConfig, flag_name
from ganforge.data import (
    ImageDataset,
    ImageFolder,
    LoadOptions,
    RealBatches,
    list_datasets,
    open_dataset,
)
from ganforge.errors import GanforgeError
from ganforge.models import (
    ModelFamily,
    Phase,
    build_model,
    list_models,
    model_defaults,
    model_kind,
)
from ganforge.report import plot_training_curves, run_panels, save_images
from ganforge.run import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    CURVES_FILE,
    EMA_SUFFIX,
    EVENTS_FILE,
    METRICS_FILE,
    SAMPLES_DIR,
    TENSORBOARD_DIR,
    Run,
    torch_device,
)
from ganforge.training import checkpoint as ckpt
from ganforge.training import fast_paths
from ganforge.training.batches import EpochBatches
from ganforge.training.clock import NO_CLOCK
from ganforge.training.diagnostics import Doctor, gradient_norms, truncate_events
from ganforge.training.distributed import Distributed, ShardedOrder, launch, launched
from ganforge.training.ema import WeightAverage
from ganforge.training.evaluation import TrainingEvaluator
from ganforge.training.interrupt import GracefulInterrupt
from ganforge.training.logbook import Logbook, truncate_records
from ganforge.training.optim import learning_rate, make_optimizer
from ganforge.training.run_lock import LOCK_FILE, RunLock, check_unlocked
from ganforge.training.tensorboard_log import TensorBoardLog


def train(
    config: TrainConfig | dict | None = None,
    *,
    resume: str | Path | Run | None = None,
    **options: Any,
) -> Run:
    """Train a model and return its Run.

    `config` is a TrainConfig or a mapping of options; keyword `options` override it.
    With `resume=RUN`, the run continues from its newest checkpoint; only options that leave
    the trajectory unchanged (steps, logging and checkpoint intervals, device) may be given.
    """
    if resume is not None:
        run_dir = Path(resume.path if isinstance(resume, Run) else resume)
        config = _resume_config(run_dir, {**dict(config or {}), **options})
    else:
        config = _new_config(config, options)
        run_dir = Path(config.out or _default_run_name(config))
    if not launched():  # before any data is read; the writer takes the lock (Trainer)
        if resume is None:
            _refuse_existing_run(run_dir)
        check_unlocked(run_dir, "--out" if resume is None else "--resume")
    if config.ddp and not launched():  # --ddp: start the processes; each builds a Trainer
        launch(config, run_dir, resume is not None, torch_device(config.device))
        return Run(run_dir)
    return Trainer(config, run_dir, resuming=resume is not None).fit()


def _new_config(config: TrainConfig | dict | None, options: dict[str, Any]) -> TrainConfig:
    """The config of a new run. From a mapping, the model's own defaults (models.registry)
    fill the options it does not give; a TrainConfig is taken as it is."""
    if isinstance(config, TrainConfig):
        return config.replace(**{k.replace("-", "_"): v for k, v in options.items()})
    given = {k.replace("-", "_"): v for k, v in {**(config or {}), **options}.items()}
    model = given.get("model", TrainConfig.model)
    defaults = model_defaults(model) if model in list_models() else {}
    return TrainConfig.from_dict({**defaults, **given})


def _resume_config(run_dir: Path, options: dict[str, Any]) -> TrainConfig:
    saved = Run(run_dir).config
    changes = {}
    for key, value in options.items():
        name = key.replace("-", "_")
        unchanged = value is None or getattr(saved, name, object()) == value
        if unchanged or (name == "out" and Path(value) == run_dir):
            continue
        if name not in RESUMABLE_OPTIONS:
            raise GanforgeError(
                f"{flag_name(name)}: cannot change on --resume (the run has "
                f"{getattr(saved, name, '?')!r}); start a new run instead"
            )
        changes[name] = value
    return saved.replace(**changes)


def _default_run_name(config: TrainConfig) -> str:
    data = Path(config.data).name if "/" in config.data else config.data
    return f"runs/{config.model}-{data}-{time.strftime('%Y%m%d-%H%M%S')}"


@contextlib.contextmanager
def only_trainable(networks: nn.ModuleDict, name: str | tuple[str, ...]) -> Iterator[nn.Module]:
    """Freeze every network but `name` (or the names in a tuple) for one phase: no grads flow
    into, or accumulate in, them. Yields the network `name` (a tuple: the first one)."""
    names = (name,) if isinstance(name, str) else tuple(name)
    for other, network in networks.items():
        if other not in names:
            network.requires_grad_(False)
    try:
        yield networks[names[0]]
    finally:
        for network in networks.values():
            network.requires_grad_(True)


class Trainer:
    """One run's training state and its steps. Built by `train`; users call `train`."""

    def __init__(self, config: TrainConfig, run_dir: Path, resuming: bool):
        self.run_dir = run_dir
        # a data-parallel run (torchrun, --ddp): this process's rank, and its GPU
        self.dist = Distributed.start(config, torch_device(config.device))
        self.device = self.dist.device(torch_device(config.device))
        fast_paths.configure_backends(self.device)
        self.tensorboard = (
            TensorBoardLog(run_dir / TENSORBOARD_DIR)
            if config.tensorboard and self.dist.is_main
            else None
        )
        dataset = open_dataset(
            config.data,
            resolution=config.resolution,
            channels=config.channels,
            strict=config.strict,
            options=LoadOptions(
                config.data_root, trust_pickle=config.trust_pickle, progress=config.progress
            ),
            cache=config.data_cache,
            paired=model_kind(config.model).data == "paired",
        )
        self.config = config = config.replace(
            resolution=dataset.resolution,
            channels=dataset.channels,
            out=str(run_dir),
            **_condition_options(config, dataset),
        )
        _check_fits(config, dataset)

        torch.manual_seed(config.seed)
        self.family: ModelFamily = build_model(config, config.resolution, config.channels)
        self.family.networks.to(self.device).train()
        if config.sync_bn:
            self.dist.sync_batchnorm(self.family.networks)
        self.channels_last = fast_paths.wants_channels_last(
            self.family.networks.values(), self.device
        )
        if self.channels_last:
            fast_paths.to_channels_last(self.family.networks.values())
        # fixed real examples the family's grids show (a translator's pairs, a VAE's images)
        self.examples = self.family.fixed_examples(
            dataset, lambda: _held_out(config, dataset), config.seed, config.n_grid
        )
        self.optimizers = {
            name: make_optimizer(
                config, self.family.networks[name], learning_rate(config, self.family, name)
            )
            for phase in self.family.phases
            for name in phase.trains
        }
        sampler = self.family.networks[self.family.sampler]
        self.ema = WeightAverage(sampler, config.ema_decay) if config.ema_decay > 0 else None
        self.precision = fast_paths.Precision(config.precision, self.device, self.family.phases)
        # --compile: compiled stand-ins the phases call (the networks keep their key names)
        self.compiled = fast_paths.compiled_networks(self.family.networks) if config.compile else {}
        self.dist.wrap(self.family.networks, list(self.optimizers), self.compiled)
        self.clock = NO_CLOCK  # `ganforge bench` puts a SectionClock here
        self.batches = EpochBatches(len(dataset), config.batch_size, config.seed)
        self.real_batches = RealBatches(
            dataset,
            self._batch_order(),
            self.device,
            cache=config.data_cache,
            workers=config.data_workers,
            hflip=config.hflip,
            seed=config.seed,
        )
        self.step = 0
        self._mid_iteration = False
        self._saved_at = time.monotonic()
        self._grad_norms: dict[str, torch.Tensor] = {}
        main = self.dist.is_main  # only rank 0 writes the run folder, and evaluates
        self.logbook = Logbook(run_dir / METRICS_FILE if main else None, self.dist.mean)
        self.evaluator = (
            TrainingEvaluator(config, self.device) if config.eval_every and main else None
        )
        self.doctor = (
            Doctor(
                config, self.family, dataset, run_dir / EVENTS_FILE if main else None, self.device
            )
            if config.doctor
            else None
        )
        self._early_stop: str | None = None
        self._lock: RunLock | None = None  # one writer per run folder (training/run_lock.py)
        try:
            if resuming:
                if main:
                    self._lock = RunLock.acquire(run_dir, "--resume")
                self._restore()
            elif main:
                self._create_run_dir()
            if self.tensorboard is not None:
                self.tensorboard.start(self.step)
        except BaseException:
            self._release_lock()
            raise

    # ---- run folder ------------------------------------------------------------------
    def _create_run_dir(self) -> None:
        _refuse_existing_run(self.run_dir)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GanforgeError(f"--out: cannot create '{self.run_dir}': {exc.strerror}") from None
        self._lock = RunLock.acquire(self.run_dir, "--out")
        _refuse_existing_run(self.run_dir)  # another run may have been written meanwhile
        (self.run_dir / SAMPLES_DIR).mkdir(exist_ok=True)
        self._write_config()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _write_config(self) -> None:
        text = json.dumps(self.config.to_dict(), indent=2) + "\n"
        atomic_write_text(self.run_dir / CONFIG_FILE, text)

    # ---- checkpoints -----------------------------------------------------------------
    def _checkpoint_contents(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything an exact resume needs: tensors, and JSON metadata."""
        tensors: dict[str, torch.Tensor] = {}
        for name, network in self.family.networks.items():
            tensors.update(ckpt.pack_module(f"networks.{name}", network))
        if self.ema is not None:
            tensors.update(
                ckpt.pack_module(f"networks.{self.family.sampler}{EMA_SUFFIX}", self.ema.network)
            )
        optimizer_meta = {}
        for name, optimizer in self.optimizers.items():
            opt_tensors, optimizer_meta[name] = ckpt.pack_optimizer(f"optimizers.{name}", optimizer)
            tensors.update(opt_tensors)
        tensors.update(ckpt.pack_rng())
        log_tensors, log_meta = self.logbook.pack_pending()
        tensors.update(log_tensors)
        metadata = {
            "logbook": log_meta,
            "step": self.step,
            "config_hash": self.config.trajectory_hash(),
            "data_position": self.batches.position,
            "optimizers": optimizer_meta,
        }
        if self.precision.scalers:
            metadata["scalers"] = self.precision.state_dict()
        if self.evaluator is not None:
            metadata["evaluation"] = self.evaluator.state.to_dict()
        if self.doctor is not None:
            metadata["doctor"] = self.doctor.state_dict()
        return tensors, metadata

    def _save(self) -> None:
        tensors, metadata = self._checkpoint_contents()  # every process: it averages the logbook
        if self.dist.is_main:
            folder = self.run_dir / CHECKPOINT_DIR
            path = folder / ckpt.checkpoint_name(self.step)
            ckpt.save_checkpoint(path, tensors, metadata)
            ckpt.prune_checkpoints(folder, self.config.keep_checkpoints, newest_valid=path)
        self._saved_at = time.monotonic()

    def _restore(self) -> None:
        """Continue from the newest valid checkpoint; a run stopped before its first one (a
        second Ctrl-C, a crash) has an intact config (Run read it): it starts over from step
        0, as a new run of that config would."""
        folder = self.run_dir / CHECKPOINT_DIR
        if self.dist.is_main and folder.is_dir():
            ckpt.remove_stale_temporaries(folder)
        rollbacks = self._load_newest(folder) if ckpt.list_checkpoints(folder) else 0
        if not self.dist.is_main:
            return
        truncate_records(self.run_dir / METRICS_FILE, self.step)
        truncate_events(self.run_dir / EVENTS_FILE, self.step, rollbacks)
        (self.run_dir / SAMPLES_DIR).mkdir(exist_ok=True)
        self._write_config()  # records the new --steps and intervals

    def _load_newest(self, folder: Path) -> int:
        """Load the newest valid checkpoint; the doctor's rollback count it carries."""
        config_file = self.run_dir / CONFIG_FILE
        networks = dict(self.family.networks.items())
        if self.ema is not None:
            networks[f"{self.family.sampler}{EMA_SUFFIX}"] = self.ema.network
        expected = ckpt.expected_tensors(networks)
        try:
            path, tensors, meta = ckpt.load_newest_valid(
                folder, complete=True, expected=expected, config_file=config_file
            )
        except ckpt.CheckpointMismatch as exc:
            raise GanforgeError(f"--resume: {exc}") from None
        if meta["config_hash"] != self.config.trajectory_hash():
            raise GanforgeError(
                f"--resume: checkpoint '{path}' was written with a different config than "
                f"'{config_file}'"
            )
        try:
            self._load_state(tensors, meta)
        except GanforgeError as exc:  # the file is whole, but it is not this run's state
            raise GanforgeError(f"--resume: checkpoint '{path}': {exc}") from None
        self.step = meta["step"]
        if self.config.steps < self.step:
            raise GanforgeError(
                f"--steps: run '{self.run_dir}' is already at step {self.step}; "
                f"give --steps {self.step} or more"
            )
        return meta["doctor"]["rollbacks"] if meta.get("doctor") is not None else 0

    def _load_state(
        self, tensors: dict[str, torch.Tensor], meta: dict, position: bool = True
    ) -> None:
        """Networks, EMA, optimisers, RNG, data position, logbook, evaluation and doctor state
        from a checkpoint whose metadata passed checkpoint.check_metadata(complete=True); with
        `position` False (a rollback), the RNG and the data order go on where they are."""
        for name, network in self.family.networks.items():
            ckpt.unpack_module(f"networks.{name}", network, tensors)
        if self.ema is not None:
            ckpt.unpack_module(
                f"networks.{self.family.sampler}{EMA_SUFFIX}", self.ema.network, tensors
            )
        for name, optimizer in self.optimizers.items():
            if name not in meta["optimizers"]:
                raise GanforgeError(f"it lacks optimizers.{name}")
            ckpt.unpack_optimizer(
                f"optimizers.{name}", optimizer, tensors, meta["optimizers"][name]
            )
        if position:
            ckpt.unpack_rng(tensors)
            self.batches = EpochBatches(
                len(self.real_batches),
                self.config.batch_size,
                self.config.seed,
                epoch=meta["data_position"]["epoch"],
                batch=meta["data_position"]["batch"],
            )
            self.real_batches.restart(self._batch_order())
        self.precision.load_state_dict(meta.get("scalers"))
        self.logbook.restore_pending(tensors, meta["logbook"])
        if self.evaluator is not None:
            self.evaluator.restore(meta.get("evaluation"))
        if self.doctor is not None:
            self.doctor.load_state_dict(meta.get("doctor"))

    # ---- one iteration ---------------------------------------------------------------
    def _batch_order(self) -> EpochBatches | ShardedOrder:
        """The seeded batch order; a data-parallel process takes its rank's slice of each."""
        if not self.dist.active:
            return self.batches
        return ShardedOrder(self.batches, self.dist.rank, self.dist.world_size)

    def _next_batch(self) -> dict[str, torch.Tensor]:
        """The next real batch (float [-1, 1] NCHW on the device, labels) in the seeded order."""
        batch = self.real_batches.next()
        return fast_paths.channels_last_batch(batch) if self.channels_last else batch

    @contextlib.contextmanager
    def _phase_context(self, phase: Phase) -> Iterator[None]:
        """What the family's loss is computed under: compiled or DDP stand-ins of the
        networks, the global batch's noise (data-parallel), autocast (--precision)."""
        stand_ins = self.dist.stand_ins(phase.trains, self.compiled)
        with (
            fast_paths.substituted(self.family.networks, stand_ins),
            self.dist.global_noise(self.family),
            self.precision.autocast(),
        ):
            yield

    def _iteration(self, log_now: bool) -> dict[str, torch.Tensor]:
        """One iteration: every phase of the family, each `repeats` times, then the EMA."""
        self._mid_iteration = True  # until the step counter moves, the state is half-updated
        grad_norms: dict[str, torch.Tensor] = {}
        batch = None
        self.family.set_progress(self.step, self.config.steps)
        for phase in self.family.phases:
            repeats = getattr(self.config, phase.repeats) if phase.repeats else 1
            optimizers = [self.optimizers[name] for name in phase.trains]
            for _ in range(repeats):
                if phase.fresh_batch or batch is None:
                    with self.clock.section("data"):
                        batch = self._next_batch()
                    self.logbook.count_images(batch["images"].shape[0] * self.dist.world_size)
                with (
                    self.clock.section(phase.name),
                    only_trainable(self.family.networks, phase.trains),
                ):
                    for optimizer in optimizers:
                        optimizer.zero_grad(set_to_none=True)
                    with self._phase_context(phase):
                        loss, stats = self.family.phase_loss(phase.name, batch)
                    self.precision.backward(phase.name, loss)
                    if log_now:
                        with self.clock.section("diagnostics"):
                            self.precision.unscale(phase.name, optimizers)
                            layers = self.config.diagnose_layers
                            for name in phase.trains:
                                network = self.family.networks[name]
                                grad_norms.update(gradient_norms(name, network, layers))
                    self.precision.step(phase.name, optimizers)
                self.logbook.add(self.precision.float_stats(stats))
                if self.doctor is not None:
                    with self.clock.section("diagnostics"):
                        self.doctor.watch(phase.name, loss, self.step + 1)
        if self.ema is not None:
            self.ema.update(self.family.networks[self.family.sampler], self.step)
        return grad_norms

    # ---- the loop ----------------------------------------------------------------------
    def sampling_network(self) -> nn.Module:
        return (
            self.ema.network if self.ema is not None else self.family.networks[self.family.sampler]
        )

    def _save_grid(self, name: str) -> None:
        images, columns = self.family.preview(
            self.sampling_network(), self.config.n_grid, self.config.seed, self.examples
        )
        save_images(images, self.run_dir / SAMPLES_DIR / name, columns=columns)

    def _save_curves(self) -> None:
        records = Run(self.run_dir).metrics()
        title = f"{self.config.model} on {self.config.data}"
        panels = run_panels(self.family)
        plot_training_curves(records, self.run_dir / CURVES_FILE, panels, title)

    def fit(self) -> Run:
        try:
            return self._fit()
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            self.dist.close()
            self._release_lock()

    def _fit(self) -> Run:
        config = self.config
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            disable=not config.progress or not self.dist.is_main,
            desc=f"{config.model} {config.data}",
            unit="step",
            dynamic_ncols=True,
        )
        if self.doctor is not None:  # the state to return to if the first steps go non-finite
            self.doctor.snapshot(*self._checkpoint_contents())
        with bar, GracefulInterrupt() as interrupt, contextlib.closing(self.real_batches):
            try:
                while (
                    self.step < config.steps
                    and not self._stop_requested(interrupt)
                    and not self._early_stop
                ):
                    self._train_one_step(bar)
            except KeyboardInterrupt:
                if self._mid_iteration:
                    raise self._interrupted_error(saved=False) from None
                interrupt.requested = True
        if self.step < config.steps and not self._early_stop:  # Ctrl-C between iterations
            self._recovered()  # a non-finite state is never saved
            self._save()
            self._finish_partial_interval()
            raise self._interrupted_error(saved=True)
        if self._early_stop:
            newest = ckpt.list_checkpoints(self.run_dir / CHECKPOINT_DIR)
            if self.dist.from_main(not newest or newest[-1][0] != self.step):
                self._save()
            if self.dist.is_main:
                tqdm.write(self._early_stop, file=sys.stderr)
        self._finish_partial_interval()
        if self.dist.is_main:
            self._save_grid("final.png")
            grids = self.family.end_grids(self.sampling_network(), self.examples)
            for file_name, (images, columns) in grids.items():
                save_images(images, self.run_dir / SAMPLES_DIR / file_name, columns=columns)
            self._save_curves()
        self.dist.barrier()  # the run folder is complete before any process returns
        return Run(self.run_dir)

    def _stop_requested(self, interrupt: GracefulInterrupt) -> bool:
        """A Ctrl-C or SIGTERM seen (by any process of a data-parallel run: all stop at the
        same step)."""
        interrupt.requested = self.dist.any(interrupt.requested)
        return interrupt.requested

    def _train_one_step(self, bar: tqdm) -> None:
        config = self.config
        record_now = (self.step + 1) % config.log_every == 0
        # Gradient norms cost a little: measure them only for a record (or the run's last step).
        self._grad_norms = self._iteration(record_now or self.step + 1 == config.steps)
        self.step += 1
        self._mid_iteration = False
        bar.update(1)
        sample_now = self.step % config.sample_every == 0
        evaluate_now = config.eval_every > 0 and self.step % config.eval_every == 0
        minutes = config.checkpoint_minutes
        overdue = minutes > 0 and self.dist.any(time.monotonic() - self._saved_at >= 60 * minutes)
        save_now = self.step % config.checkpoint_every == 0 or self.step == config.steps or overdue
        if not (record_now or sample_now or evaluate_now or save_now):
            return
        with self.clock.section("diagnostics"):
            recovered = self._recovered()
        if recovered:  # nothing non-finite is logged, evaluated or saved
            bar.n = self.step
            bar.refresh()
            return
        if record_now:
            with self.clock.section("diagnostics"):
                self._record(bar)
        if sample_now and self.dist.is_main:
            name = f"step_{self.step:07d}.png"
            self._save_grid(name)
            if self.tensorboard is not None:
                self.tensorboard.samples(self.run_dir / SAMPLES_DIR / name, self.step)
        if evaluate_now:
            self._evaluate(bar)
        if save_now:
            self._save()
            if self.dist.is_main:
                self._save_curves()
        if self.doctor is not None:  # the state to return to if a later step goes non-finite
            with self.clock.section("diagnostics"):
                self.doctor.snapshot(*self._checkpoint_contents())

    def _record(self, bar: tqdm) -> None:
        """Write this step's record (with the doctor's signals) and let the doctor read it."""
        extra = dict(self._grad_norms)
        if self.doctor is not None and self.dist.is_main:
            extra.update(self.doctor.signals(self.family.networks, self.sampling_network()))
        record = self.logbook.flush(self.step, extra)  # every process: it averages the sums
        if not self.dist.is_main:
            return
        if self.tensorboard is not None:
            self.tensorboard.record(record, self.family.networks)
        postfix = {k: record[k] for k in self.family.progress_stats if k in record}
        if self.doctor is not None:
            self.doctor.observe(record)
            if self.doctor.firing:
                postfix["doctor"] = ",".join(self.doctor.firing)
        bar.set_postfix(postfix)

    def _recovered(self) -> bool:
        """Check the steps since the last check (one host sync); after a NaN or infinity, go
        back to the doctor's snapshot with smaller learning rates and say so (True)."""
        if self.doctor is None:
            return False
        problem = self.doctor.check(self.family.networks, self.dist.minimum)
        if problem is None:
            return False
        tensors, meta = self.doctor.roll_back(problem, self.step)
        self._load_state(tensors, meta, position=False)  # the bad batches are skipped
        self.step = meta["step"]
        return True

    def _evaluate(self, bar: tqdm) -> None:
        """Measure the metric, log it, keep the best checkpoint, and maybe stop early (rank 0
        evaluates; in a data-parallel run, the others learn what it decided)."""
        if not self.dist.is_main:
            if self.dist.from_main(False):  # improved: the checkpoint averages the logbook
                self._checkpoint_contents()
            if self.dist.from_main(False):
                self._early_stop = "stopped early"
            return
        record, improved = self.evaluator.evaluate(self.family, self.sampling_network(), self.step)
        self.logbook.append(record)
        if self.tensorboard is not None:
            self.tensorboard.scalars(record)
        if self.doctor is not None:
            self.doctor.observe(record)
        if self.dist.from_main(improved):
            tensors, metadata = self._checkpoint_contents()
            metadata["eval"] = record
            folder = self.run_dir / CHECKPOINT_DIR
            ckpt.save_checkpoint(folder / BEST_CHECKPOINT, tensors, metadata)
        metric = self.evaluator.metric
        bar.set_postfix({metric: record[f"eval_{metric}"], "best": self.evaluator.state.best})
        if self.dist.from_main(self.evaluator.should_stop()):
            self._early_stop = self.evaluator.stop_message(self.step)

    def _finish_partial_interval(self) -> None:
        """Log the steps since the last record (a resumed run recomputes this record)."""
        if self.logbook.pending:
            self.logbook.flush(self.step, self._grad_norms, partial=True)

    def _interrupted_error(self, saved: bool) -> GanforgeError:
        resume = f"continue with `ganforge train --resume {self.run_dir}`"
        if saved:
            return GanforgeError(f"interrupted at step {self.step}; checkpoint saved; {resume}")
        found = ckpt.list_checkpoints(self.run_dir / CHECKPOINT_DIR)
        last = f"step {found[-1][0]}" if found else "none yet, so it starts over from step 0"
        return GanforgeError(
            f"interrupted inside step {self.step + 1} (last checkpoint: {last}); {resume}"
        )


def _refuse_existing_run(run_dir: Path) -> None:
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


def _condition_options(config: TrainConfig, dataset: ImageDataset | ImageFolder) -> dict:
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


def _held_out(config: TrainConfig, dataset: ImageDataset) -> ImageDataset:
    """The held-out split of a registered paired dataset (its "test" split), for fixed
    examples the model never trains on; any other dataset itself."""
    if config.data not in list_datasets(paired=True):
        return dataset
    options = LoadOptions(config.data_root, split="test", trust_pickle=config.trust_pickle)
    return open_dataset(
        config.data,
        resolution=config.resolution,
        channels=config.channels,
        options=options,
        paired=True,
    )


def _check_fits(config: TrainConfig, dataset: ImageDataset | ImageFolder) -> None:
    if config.batch_size > len(dataset):
        raise GanforgeError(
            f"--batch-size: {config.batch_size} is larger than dataset '{config.data}' "
            f"({len(dataset)} images)"
        )

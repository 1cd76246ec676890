"""The training loop: one Trainer per run (per process in a data-parallel run), its
iterations, and what falls on their steps: records, sample grids, evaluations, checkpoints.

It knows no architecture: the model family says which phases an iteration has, which network
each phase updates, and what each phase's loss is. What the Trainer is built from is
setup.py's; what it saves and resumes, state.py's; the doctor, doctor/.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ganforge.checkpoint_file import checkpoint_name, list_checkpoints
from ganforge.config import RESUMABLE_OPTIONS, TrainConfig, flag_name
from ganforge.data import RealBatches
from ganforge.errors import GanforgeError, TrainingStopped
from ganforge.i18n import _
from ganforge.models import ModelFamily, Phase, list_models, model_defaults
from ganforge.report import plot_training_curves, run_panels, save_images
from ganforge.run import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    CURVES_FILE,
    EVENTS_FILE,
    METRICS_FILE,
    SAMPLES_DIR,
    TENSORBOARD_DIR,
    Run,
    torch_device,
)
from ganforge.training import checkpoint as ckpt
from ganforge.training import fast_paths
from ganforge.training.banner import StartBanner
from ganforge.training.batches import EpochBatches
from ganforge.training.clock import NO_CLOCK
from ganforge.training.distributed import Distributed, ShardedOrder, launch, launched
from ganforge.training.doctor import Doctor, gradient_norms, truncate_events
from ganforge.training.evaluation import TrainingEvaluator
from ganforge.training.interrupt import GracefulInterrupt
from ganforge.training.logbook import Logbook, truncate_records
from ganforge.training.run_lock import RunLock, check_unlocked
from ganforge.training.schedule import apply_schedule
from ganforge.training.setup import (
    build_averages,
    build_family,
    build_optimizers,
    create_run_dir,
    held_out,
    open_training_data,
    refuse_existing_run,
    write_config,
)
from ganforge.training.state import TrainingState
from ganforge.training.tensorboard_log import TensorBoardLog

CURVES_EVERY_S = 60.0  # loss_curves.png is redrawn at a checkpoint at most this often


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
        config = new_config(config, options)
        run_dir = Path(config.out or _default_run_name(config))
    if not launched():  # before any data is read; the writer takes the lock (Trainer)
        if resume is None:
            refuse_existing_run(run_dir)
        check_unlocked(run_dir, "--out" if resume is None else "--resume")
    if config.ddp and not launched():  # --ddp: start the processes; each builds a Trainer
        launch(config, run_dir, resume is not None, torch_device(config.device), fit_process)
        return Run(run_dir)
    return Trainer(config, run_dir, resuming=resume is not None).fit()


def new_config(config: TrainConfig | dict | None, options: dict[str, Any]) -> TrainConfig:
    """The config of a new run (`train`'s, and `ganforge bench`'s). From a mapping, the model's
    own defaults (models.registry) fill the options it does not give; a TrainConfig is taken
    as it is."""
    if isinstance(config, TrainConfig):
        return config.replace(**{k.replace("-", "_"): v for k, v in options.items()})
    given = {k.replace("-", "_"): v for k, v in {**(config or {}), **options}.items()}
    model = given.get("model", TrainConfig.model)
    defaults = model_defaults(model) if model in list_models() else {}
    return TrainConfig.from_dict({**defaults, **given})


def _resume_config(run_dir: Path, options: dict[str, Any]) -> TrainConfig:
    saved = Run(run_dir).config
    values = saved.to_dict()  # the shared options and the model's own
    changes = {}
    for key, value in options.items():
        name = key.replace("-", "_")
        unchanged = value is None or values.get(name, object()) == value
        if unchanged or (name == "out" and Path(value) == run_dir):
            continue
        if name not in RESUMABLE_OPTIONS:
            raise GanforgeError(
                f"{flag_name(name)}: cannot change on --resume (the run has "
                f"{values.get(name, '?')!r}); start a new run instead"
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


def fit_process(config: TrainConfig, run_dir: Path, resuming: bool) -> None:
    """What each process of a `--ddp` run does (training/distributed.py launches it)."""
    Trainer(config, run_dir, resuming).fit()


class Trainer:
    """One run's training: built from its config (setup.py), holding its resumable `state`
    (state.py), advanced one iteration at a time by `step`. `train` builds one and calls
    `fit`; `ganforge bench` and benchmarks/ call `step` themselves."""

    def __init__(self, config: TrainConfig, run_dir: Path, resuming: bool):
        self.run_dir = run_dir
        # a data-parallel run (torchrun, --ddp): this process's rank, and its GPU; only rank 0
        # writes the run folder (its logbook, events and TensorBoard have a path) and evaluates
        self.dist = Distributed.start(config, torch_device(config.device))
        self.device = self.dist.device(torch_device(config.device))
        main = self.dist.is_main
        fast_paths.configure_backends(self.device)
        self.tensorboard = (
            TensorBoardLog(run_dir / TENSORBOARD_DIR) if config.tensorboard and main else None
        )
        self.config, dataset = config, dataset = open_training_data(config, run_dir)
        family, self.channels_last = build_family(config, self.device, self.dist)
        # fixed real examples the family's grids show (a translator's pairs, a VAE's images)
        self.examples = family.fixed_examples(
            dataset, lambda: held_out(config, dataset), config.seed, config.n_grid
        )
        optimizers = build_optimizers(config, family)
        averages = build_averages(config, family)
        precision = fast_paths.Precision(config.precision, self.device, family.phases)
        # --compile: compiled stand-ins the phases call (the networks keep their key names)
        self.compiled = fast_paths.compiled_networks(family.networks) if config.compile else {}
        self.dist.wrap(family.networks, list(optimizers), self.compiled)
        batches = EpochBatches(len(dataset), config.batch_size, config.seed)
        self.real_batches = RealBatches(
            dataset,
            self._sharded(batches),
            self.device,
            cache=config.data_cache,
            workers=config.data_workers,
            hflip=config.hflip,
            seed=config.seed,
        )
        self.state = TrainingState(
            config,
            family,
            optimizers,
            averages,
            precision,
            batches,
            Logbook(run_dir / METRICS_FILE if main else None, self.dist.mean),
            TrainingEvaluator(config, self.device) if config.eval_every and main else None,
            Doctor(config, family, dataset, run_dir / EVENTS_FILE if main else None, self.device)
            if config.doctor
            else None,
        )
        self.clock = NO_CLOCK  # `ganforge bench` puts a SectionClock here
        self.progress = tqdm(disable=True)  # fit() shows a real progress bar
        self.banner = StartBanner("", self.run_dir, 0, 0, enabled=False)  # and says where it goes
        self._mid_iteration = False
        self._saved_at = time.monotonic()
        self._curves_at: float | None = None  # when loss_curves.png was last drawn
        self._grad_norms: dict[str, torch.Tensor] = {}
        self._early_stop: str | None = None
        self._lock: RunLock | None = None  # one writer per run folder (training/run_lock.py)
        try:
            if resuming:
                if main:
                    self._lock = RunLock.acquire(run_dir, "--resume")
                self._restore()
            elif main:
                self._lock = create_run_dir(run_dir, config)
            if self.tensorboard is not None:
                self.tensorboard.start(self.state.step)
        except BaseException:
            self._release_lock()
            raise

    @property
    def family(self) -> ModelFamily:
        return self.state.family

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.state.optimizers

    def sampling_network(self) -> nn.Module:
        return self.state.sampling_network()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ---- resume ----------------------------------------------------------------------
    def _restore(self) -> None:
        """Continue from the newest valid checkpoint; a run stopped before its first one (a
        second Ctrl-C, a crash) has an intact config (Run read it): it starts over from step
        0, as a new run of that config would."""
        folder = self.run_dir / CHECKPOINT_DIR
        if self.dist.is_main and folder.is_dir():
            ckpt.remove_stale_temporaries(folder)
        rollbacks = 0
        if list_checkpoints(folder):
            meta = self.state.load_newest(folder, self.run_dir / CONFIG_FILE)
            self.real_batches.restart(self._sharded(self.state.batches))
            step = self.state.step
            if self.config.steps < step:
                raise GanforgeError(
                    f"--steps: run '{self.run_dir}' is already at step {step}; "
                    f"give --steps {step} or more"
                )
            rollbacks = meta["doctor"]["rollbacks"] if meta.get("doctor") is not None else 0
        if not self.dist.is_main:
            return
        truncate_records(self.run_dir / METRICS_FILE, self.state.step)
        truncate_events(self.run_dir / EVENTS_FILE, self.state.step, rollbacks)
        (self.run_dir / SAMPLES_DIR).mkdir(exist_ok=True)
        write_config(self.run_dir, self.config)  # records the new --steps and intervals

    def start_from(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Go on from another run's state (a checkpoint's `tensors` and `meta`, already fitted
        to this run's networks: training/fork.py), at its step and data position."""
        self.state.load(tensors, meta)
        self.real_batches.restart(self._sharded(self.state.batches))

    # ---- one iteration ---------------------------------------------------------------
    def _sharded(self, batches: EpochBatches) -> EpochBatches | ShardedOrder:
        """The seeded batch order; a data-parallel process takes its rank's slice of each."""
        if not self.dist.active:
            return batches
        return ShardedOrder(batches, self.dist.rank, self.dist.world_size)

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
            self.state.precision.autocast(),
        ):
            yield

    def _iteration(self, log_now: bool) -> dict[str, torch.Tensor]:
        """One iteration: every phase of the family, each `repeats` times, then the EMA. A
        phase's update sums the gradients of --accumulate batches, each loss divided by their
        number: the update of one batch that many times larger."""
        self._mid_iteration = True  # until the step counter moves, the state is half-updated
        state, config = self.state, self.config
        precision, family = state.precision, state.family
        grad_norms: dict[str, torch.Tensor] = {}
        batches: list[dict[str, torch.Tensor]] = []
        family.set_progress(state.step, config.steps)
        apply_schedule(config, state.optimizers.values(), state.step)
        for phase in family.phases:
            repeats = getattr(self.config, phase.repeats) if phase.repeats else 1
            optimizers = [state.optimizers[name] for name in phase.trains]
            for _repeat in range(repeats):
                if phase.fresh_batch or not batches:
                    with self.clock.section("data"):
                        batches = [self._next_batch() for _ in range(config.accumulate)]
                    for batch in batches:
                        state.logbook.count_images(batch["images"].shape[0] * self.dist.world_size)
                with self.clock.section(phase.name), only_trainable(family.networks, phase.trains):
                    for optimizer in optimizers:
                        optimizer.zero_grad(set_to_none=True)
                    loss = self._accumulated_loss(phase, batches)
                    if log_now:
                        with self.clock.section("diagnostics"):
                            precision.unscale(phase.name, optimizers)
                            for name in phase.trains:
                                network = family.networks[name]
                                grad_norms.update(
                                    gradient_norms(name, network, config.diagnose_layers)
                                )
                    precision.step(phase.name, optimizers)
                    family.after_step(phase.name)
                if state.doctor is not None:
                    with self.clock.section("diagnostics"):
                        state.doctor.watch(phase.name, loss, state.step + 1)
        state.update_averages()
        return grad_norms

    def _accumulated_loss(self, phase: Phase, batches: list[dict[str, torch.Tensor]]):
        """Backpropagate the phase's loss on each batch (divided by their number when there
        are several) and log its statistics; the loss (the batches' mean) for the doctor."""
        state, precision = self.state, self.state.precision
        losses = []
        for batch in batches:
            with self._phase_context(phase):
                loss, stats = state.family.phase_loss(phase.name, batch)
            precision.backward(phase.name, loss / len(batches) if len(batches) > 1 else loss)
            state.logbook.add(precision.float_stats(stats))
            losses.append(loss.detach())
        return losses[0] if len(losses) == 1 else torch.stack(losses).mean()

    # ---- the loop ----------------------------------------------------------------------
    def fit(self) -> Run:
        """Train to --steps (or an early stop, or a Ctrl-C: saved, then an error saying how
        to resume); the run folder complete with its final grids and curves."""
        try:
            return self._fit()
        finally:
            self.close()

    def close(self) -> None:
        """Let go of what the run holds: data workers, TensorBoard, the process group, the
        run folder's lock (fit does it at its end; `ganforge bench` after its steps)."""
        self.real_batches.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.dist.close()
        self._release_lock()

    def _fit(self) -> Run:
        config = self.config
        self.progress = tqdm(
            total=config.steps,
            initial=self.state.step,
            disable=not config.progress or not self.dist.is_main,
            desc=f"{config.model} {config.data}",
            unit="step",
            dynamic_ncols=True,
        )
        self.banner = StartBanner(
            _("{model} on {data}").format(model=config.model, data=config.data),
            self.run_dir,
            self.state.step,
            config.steps,
            enabled=config.progress and self.dist.is_main,
        )
        self.banner.started()
        with self.progress, GracefulInterrupt() as interrupt, contextlib.closing(self.real_batches):
            try:
                while (
                    self.state.step < config.steps
                    and not self._stop_requested(interrupt)
                    and not self._early_stop
                ):
                    self.step()
            except KeyboardInterrupt:
                if self._mid_iteration:
                    raise self._interrupted_error(saved=False) from None
                interrupt.requested = True
        if self.state.step < config.steps and not self._early_stop:  # Ctrl-C between steps
            self._recovered()  # a non-finite state is never saved
            self._save()
            self._finish_partial_interval()
            if self.dist.is_main:  # what the student looks at first, as at a normal end
                self._save_final_grids()
                self._save_curves(final=True)
            raise self._interrupted_error(saved=True)
        if self._early_stop:
            newest = list_checkpoints(self.run_dir / CHECKPOINT_DIR)
            if self.dist.from_main(not newest or newest[-1][0] != self.state.step):
                self._save()
            if self.dist.is_main:
                tqdm.write(self._early_stop, file=sys.stderr)
        self._finish_partial_interval()
        if self.dist.is_main:
            self._save_final_grids()
            self._save_curves(final=True)
        self.dist.barrier()  # the run folder is complete before any process returns
        return Run(self.run_dir)

    def _stop_requested(self, interrupt: GracefulInterrupt) -> bool:
        """A Ctrl-C or SIGTERM seen (by any process of a data-parallel run: all stop at the
        same step)."""
        interrupt.requested = self.dist.any(interrupt.requested)
        return interrupt.requested

    def step(self) -> None:
        """One training iteration, then what falls on its step: a record (--log-every), a
        sample grid (--sample-every), an evaluation (--eval-every), a checkpoint
        (--checkpoint-every, --checkpoint-minutes, the last step); before any of them the
        doctor's check (a non-finite step rolls back instead), after them its snapshot."""
        config, state = self.config, self.state
        if state.doctor is not None and not state.doctor.has_snapshot:
            with self.clock.section("diagnostics"):  # the state to return to from the start
                state.doctor.snapshot(*state.contents())
        record_now = (state.step + 1) % config.log_every == 0
        # Gradient norms cost a little: measure them only for a record (or the run's last step).
        self._grad_norms = self._iteration(record_now or state.step + 1 == config.steps)
        state.step += 1
        self._mid_iteration = False
        self.progress.update(1)
        self.banner.stepped(state.step)
        step = state.step
        sample_now = step % config.sample_every == 0
        evaluate_now = config.eval_every > 0 and step % config.eval_every == 0
        minutes = config.checkpoint_minutes
        overdue = minutes > 0 and self.dist.any(time.monotonic() - self._saved_at >= 60 * minutes)
        save_now = step % config.checkpoint_every == 0 or step == config.steps or overdue
        if not (record_now or sample_now or evaluate_now or save_now):
            return
        with self.clock.section("diagnostics"):
            recovered = self._recovered()
        if recovered:  # nothing non-finite is logged, evaluated or saved
            self.progress.n = state.step
            self.progress.refresh()
            return
        if record_now:
            with self.clock.section("diagnostics"):
                self._record()
        if sample_now and self.dist.is_main:
            self._save_grid(f"step_{step:07d}.png")
        if evaluate_now:
            self._evaluate()
        if save_now:
            self._save()
            if self.dist.is_main:
                self._save_curves()
        if state.doctor is not None:  # the state to return to if a later step goes non-finite
            with self.clock.section("diagnostics"):
                state.doctor.snapshot(*state.contents())

    # ---- what falls on a step ----------------------------------------------------------
    def _record(self) -> None:
        """Write this step's record (with the doctor's signals) and let the doctor read it."""
        state, doctor = self.state, self.state.doctor
        extra = dict(self._grad_norms)
        if doctor is not None and self.dist.is_main:
            extra.update(doctor.signals(state.family.networks, state.sampling_network()))
        record = state.logbook.flush(state.step, extra)  # every process: it averages the sums
        if not self.dist.is_main:
            return
        if self.tensorboard is not None:
            self.tensorboard.record(record, state.family.networks)
        postfix = {k: record[k] for k in state.family.progress_stats if k in record}
        if doctor is not None:
            doctor.observe(record)
            if doctor.firing:
                postfix["doctor"] = ",".join(doctor.firing)
        self.progress.set_postfix(postfix)

    def _recovered(self) -> bool:
        """Check the steps since the last check (one host sync); after a NaN or infinity, go
        back to the doctor's snapshot with smaller learning rates and say so (True)."""
        doctor = self.state.doctor
        if doctor is None:
            return False
        problem = doctor.check(self.family.networks, self.dist.minimum)
        if problem is None:
            return False
        tensors, meta = doctor.roll_back(problem, self.state.step)
        self.state.load(tensors, meta, position=False)  # the bad batches are skipped
        return True

    def _evaluate(self) -> None:
        """Measure the metric, log it, keep the best checkpoint, and maybe stop early (rank 0
        evaluates; in a data-parallel run, the others learn what it decided)."""
        state, evaluator = self.state, self.state.evaluator
        if not self.dist.is_main:
            if self.dist.from_main(False):  # improved: the checkpoint averages the logbook
                state.contents()
            if self.dist.from_main(False):
                self._early_stop = "stopped early"
            return
        record, improved = evaluator.evaluate(state.family, state.sampling_network(), state.step)
        state.logbook.append(record)
        if self.tensorboard is not None:
            self.tensorboard.scalars(record)
        if state.doctor is not None:
            state.doctor.observe(record)
        if self.dist.from_main(improved):
            tensors, metadata = state.contents()
            metadata["eval"] = record
            folder = self.run_dir / CHECKPOINT_DIR
            ckpt.save_checkpoint(folder / BEST_CHECKPOINT, tensors, metadata)
        metric = evaluator.metric
        self.progress.set_postfix({metric: record[f"eval_{metric}"], "best": evaluator.state.best})
        if self.dist.from_main(evaluator.should_stop()):
            self._early_stop = evaluator.stop_message(state.step)

    def _save(self) -> None:
        tensors, metadata = self.state.contents()  # every process: it averages the logbook
        if self.dist.is_main:
            folder = self.run_dir / CHECKPOINT_DIR
            path = folder / checkpoint_name(self.state.step)
            ckpt.save_checkpoint(path, tensors, metadata)
            ckpt.prune_checkpoints(folder, self.config.keep_checkpoints, newest_valid=path)
        self._saved_at = time.monotonic()

    def _save_grid(self, name: str) -> None:
        images, columns = self.family.preview(
            self.sampling_network(), self.config.n_grid, self.config.seed, self.examples
        )
        save_images(images, self.run_dir / SAMPLES_DIR / name, columns=columns)
        if self.tensorboard is not None and name.startswith("step_"):
            self.tensorboard.samples(self.run_dir / SAMPLES_DIR / name, self.state.step)

    def _save_final_grids(self) -> None:
        self._save_grid("final.png")
        grids = self.family.end_grids(self.sampling_network(), self.examples)
        for file_name, (images, columns) in grids.items():
            save_images(images, self.run_dir / SAMPLES_DIR / file_name, columns=columns)

    def _save_curves(self, final: bool = False) -> None:
        """Redraw loss_curves.png: at the end, and at a checkpoint unless it was redrawn less
        than CURVES_EVERY_S ago (a redraw takes about a second: a run checkpointing every few
        seconds would spend most of its time drawing)."""
        now = time.perf_counter()  # not monotonic(): --checkpoint-minutes' tests fake that one
        if not final and self._curves_at is not None and now - self._curves_at < CURVES_EVERY_S:
            return
        self._curves_at = now
        records = Run(self.run_dir).metrics()
        title = f"{self.config.model} on {self.config.data}"
        plot_training_curves(records, self.run_dir / CURVES_FILE, run_panels(self.family), title)

    def _finish_partial_interval(self) -> None:
        """Log the steps since the last record (a resumed run recomputes this record)."""
        if self.state.logbook.pending:
            self.state.logbook.flush(self.state.step, self._grad_norms, partial=True)

    def _interrupted_error(self, saved: bool) -> GanforgeError:
        resume = _("continue with `ganforge train --resume {run}`").format(run=self.run_dir)
        if saved:
            return TrainingStopped(
                _(
                    "stopped at step {step} as asked; checkpoint, curves and "
                    "samples/final.png saved; {resume}"
                ).format(step=self.state.step, resume=resume)
            )
        found = list_checkpoints(self.run_dir / CHECKPOINT_DIR)
        last = (
            _("step {step}").format(step=found[-1][0])
            if found
            else _("none yet, so it starts over from step 0")
        )
        return GanforgeError(
            _("interrupted inside step {step} (last checkpoint: {last}); {resume}").format(
                step=self.state.step + 1, last=last, resume=resume
            )
        )

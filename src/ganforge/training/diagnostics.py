"""The GAN doctor: cheap signals in every record, detectors that name what is going wrong and
what to try, and recovery from a step whose loss or weights stopped being finite.

Signals are measured on log steps only and kept as tensors until the logbook's flush (one host
sync per record): the weight norm of each network, optionally the gradient norm of every
parameter tensor (--diagnose-layers), and the diversity of a fixed noise batch next to that of
real images. Detectors read each flushed record and each evaluation record; when one starts
firing it writes an event to RUN/events.jsonl, then at most every --doctor-repeat records
while the problem lasts. Their state (windows, counters) travels in checkpoints, so a resumed
run writes the same events as one that never stopped.

Recovery: every step's losses are checked for NaN/infinity on the device without a host sync;
the check is read (with the weights' finiteness) only on steps that write something. A bad
step rolls training back to an in-memory snapshot of the last good such step, with smaller
learning rates, and goes on with the next batches: the ones since the snapshot, the bad one
among them, are skipped, not replayed.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ganforge.config import TrainConfig, flag_name
from ganforge.data import ImageDataset, ImageFolder, to_model_range
from ganforge.errors import GanforgeError, brief
from ganforge.models import ModelFamily
from ganforge.modules import eval_mode
from ganforge.training.logbook import truncate_records

DIVERSITY_SAMPLES = 64  # fixed noise vectors (and real images) the diversity is measured on
_THUMBNAIL = 16  # images are average-pooled to at most 16x16 before the projection
_PROJECTION_DIMS = 128
_PROJECTION_SEED = 2014  # fixed: the same feature in every run
_MIN_HISTORY = 5  # records a running median needs before it is trusted


# ---- signals ------------------------------------------------------------------------------


def gradient_norms(name: str, network: nn.Module, per_layer: bool = False) -> dict:
    """`grad_norm_<name>`: the L2 norm of all of `network`'s gradients (one fused kernel), and
    with `per_layer` one `grad_norm_<name>.<parameter>` per parameter tensor. Tensors, unsynced."""
    named = [(key, p.grad.detach()) for key, p in network.named_parameters() if p.grad is not None]
    if not named:
        return {f"grad_norm_{name}": torch.zeros(())}
    norms = torch._foreach_norm([grad for _, grad in named])
    found = {f"grad_norm_{name}": torch.linalg.vector_norm(torch.stack(norms))}
    if per_layer:
        found.update({f"grad_norm_{name}.{key}": norm for (key, _), norm in zip(named, norms)})
    return found


def weight_norm(network: nn.Module) -> torch.Tensor:
    """The L2 norm of all of `network`'s parameters, as an unsynced tensor."""
    params = [p.detach() for p in network.parameters()]
    if not params:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params)))


class DiversityProbe:
    """Mean pairwise distance between the images of a fixed noise batch: it falls towards 0 as
    the generator's outputs stop depending on the noise (mode collapse).

    Images are average-pooled to 16x16 thumbnails (small shifts and pixel noise count for
    little) and mapped by a fixed Gaussian random projection to 128 numbers, which keeps
    distances within a few percent (Johnson-Lindenstrauss) at a cost and scale that do not grow
    with the resolution. `real` is the same measure on as many real images, drawn once.
    """

    def __init__(
        self,
        family: ModelFamily,
        dataset: ImageDataset | ImageFolder,
        seed: int,
        device: torch.device,
    ):
        n = min(DIVERSITY_SAMPLES, len(dataset))
        noise = family.sample_latent(n, generator=torch.Generator().manual_seed(seed))
        self.noise = noise.to(device)
        self.family = family
        picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
        real = to_model_range(dataset.images_at(picks).cpu()).to(device)
        # class labels, or a translator's fixed source images
        condition = family.fixed_conditions(dataset, picks)
        self.condition = None if condition is None else condition.to(device)
        channels, resolution = real.shape[1], real.shape[-1]
        self.size = min(_THUMBNAIL, resolution)
        projection = torch.randn(
            channels * self.size**2,
            _PROJECTION_DIMS,
            generator=torch.Generator().manual_seed(_PROJECTION_SEED),
        )
        self.projection = (projection / math.sqrt(_PROJECTION_DIMS)).to(device)
        self.real = float(self.diversity_of(real))

    def diversity_of(self, images: torch.Tensor) -> torch.Tensor:
        """Mean pairwise distance of the features of images in [-1, 1], NCHW."""
        thumbnails = F.adaptive_avg_pool2d(images.float(), self.size).flatten(1)
        return torch.pdist(thumbnails @ self.projection).mean()

    @torch.no_grad()
    def diversity(self, network: nn.Module) -> torch.Tensor:
        """The measure on `network`'s images of the fixed noise, in eval mode (batch-norm
        statistics are read, not updated: the training trajectory is untouched)."""
        with eval_mode(network):
            return self.diversity_of(self.family.sample(network, self.noise, self.condition))


# ---- events -------------------------------------------------------------------------------


@dataclass
class Event:
    """One line of events.jsonl: what happened when, the numbers behind it, what to try."""

    step: int
    event: str
    evidence: dict  # the numbers that triggered it, and a plain-words "explanation"
    remedies: list[str]  # flags to try, e.g. "--lr-d 0.0001"

    def to_json(self) -> str:
        evidence = {key: _json_number(value) for key, value in self.evidence.items()}
        fields = {"step": self.step, "event": self.event, "evidence": evidence}
        return json.dumps({**fields, "remedies": self.remedies})


def _json_number(value: object) -> object:
    """Numbers rounded for reading; NaN and infinity as text (JSON has no such numbers)."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    return value


def _lr(value: float) -> str:
    return f"{value:.2g}"


# ---- detectors ------------------------------------------------------------------------------


class Detector:
    """Reads records one at a time; `examine` returns the evidence while the problem shows,
    else None. Everything it remembers is in `self.state` (plain JSON, saved in checkpoints)."""

    name = ""  # unique: the key of its state
    event = ""  # the event it emits (two detectors may share one)
    counters: tuple[str, ...] = ()  # keys of its state holding a whole number (a streak, a step)

    def __init__(self, config: TrainConfig):
        self.config = config
        self.state: dict = self.initial_state()

    def initial_state(self) -> dict:
        return {}

    def is_window(self, key: str) -> bool:
        """Whether `key` names one of its windows (a list of finite numbers, see `remember`)."""
        return False

    def check_state(self, state: object, where: str) -> None:
        """Refuse a saved state (from a checkpoint) this detector could trip over later."""
        _require(isinstance(state, dict), where, "an object", state)
        for key, value in state.items():
            if key in self.counters:
                _require(_count(value), f"{where}.{key}", _COUNT, value)
            elif isinstance(key, str) and self.is_window(key):
                ok = isinstance(value, list) and all(_number(v) for v in value)
                _require(ok, f"{where}.{key}", "a list of finite numbers", value)
            else:
                raise GanforgeError(f"{where} has a field no {self.name} state has: {brief(key)}")

    def reads(self, record: dict) -> bool:
        """Whether `record` says anything about this problem (training or evaluation record)."""
        return "eval_best" not in record

    def examine(self, record: dict) -> dict | None:
        raise NotImplementedError

    def remedies(self) -> list[str]:
        raise NotImplementedError

    def warmed_up(self, record: dict) -> bool:
        return record["step"] >= self.config.doctor_warmup

    def remember(self, key: str, value: float) -> list[float]:
        """Append a finite value to the window `key`; return the window before it."""
        window = self.state.setdefault(key, [])
        before = list(window)
        if math.isfinite(value):
            window.append(value)
            del window[: -self.config.doctor_window]
        return before

    def streak(self, holds: bool) -> int:
        """Consecutive records for which `holds` was true, this one included."""
        self.state["streak"] = self.state.get("streak", 0) + 1 if holds else 0
        return self.state["streak"]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _total_norm_keys(record: dict) -> list[str]:
    return [k for k in record if k.startswith("grad_norm_") and "." not in k]


class Exploding(Detector):
    """A loss or gradient norm that is not finite, a gradient norm far above its running
    median, or a weight norm far above its value at initialisation (a run that blows up from
    its first steps has no sane median to compare with)."""

    name = event = "exploding"

    def __init__(self, config: TrainConfig, initial_weight_norms: dict[str, float] | None = None):
        super().__init__(config)
        self.initial_weight_norms = initial_weight_norms or {}

    def is_window(self, key: str) -> bool:
        return key.startswith("grad_norm_") and "." not in key

    def examine(self, record: dict) -> dict | None:
        watched = [k for k in record if k.startswith("loss_")] + _total_norm_keys(record)
        for key in watched:
            value = record[key]
            if isinstance(value, (int, float)) and not math.isfinite(value):
                return {
                    key: value,
                    "explanation": f"{key} is {value}: training has diverged.",
                }
        factor = self.config.doctor_explode_factor
        for key, initial in self.initial_weight_norms.items():
            value = record.get(key)
            if isinstance(value, (int, float)) and initial > 0 and value > factor * initial:
                return {
                    key: value,
                    "at_initialisation": initial,
                    "factor": value / initial,
                    "explanation": f"{key} grew to {value / initial:.0f}x its value at "
                    "initialisation: the updates are far too large for these weights.",
                }
        found = None
        for key in _total_norm_keys(record):
            value = record[key]
            before = self.remember(key, value)
            if found is None and len(before) >= _MIN_HISTORY and self.warmed_up(record):
                median = _median(before)
                if value > factor * median:
                    found = {
                        key: value,
                        "running_median": median,
                        "factor": value / median if median > 0 else math.inf,
                        "explanation": f"{key} jumped to {value / max(median, 1e-12):.0f}x its "
                        "running median: updates this large throw the networks off course.",
                    }
        return found

    def remedies(self) -> list[str]:
        c = self.config
        return [
            f"--lr-d {_lr(c.lr_d / 2)}",
            f"--lr-g {_lr(c.lr_g / 2)}",
            "--spectral-norm",
            "--r1 10",
        ]


class Vanishing(Detector):
    """G's gradient collapses against its running median while D wins nearly every call."""

    name = event = "vanishing"

    def __init__(self, config: TrainConfig, sampler: str = "generator"):
        super().__init__(config)
        self.key = f"grad_norm_{sampler}"

    def is_window(self, key: str) -> bool:
        return key == self.key

    def examine(self, record: dict) -> dict | None:
        if self.key not in record or "d_accuracy" not in record:
            return None
        value, accuracy = record[self.key], record["d_accuracy"]
        before = self.remember(self.key, value)
        if len(before) < _MIN_HISTORY or not self.warmed_up(record):
            return None
        median = _median(before)
        if value < self.config.doctor_vanish_factor * median and (
            accuracy >= self.config.doctor_vanish_accuracy
        ):
            return {
                self.key: value,
                "running_median": median,
                "d_accuracy": accuracy,
                "explanation": f"G's gradient fell to {value / median:.2g}x its running median "
                f"while D is right {accuracy:.1%} of the time: G has almost nothing to learn from.",
            }
        return None

    def remedies(self) -> list[str]:
        c = self.config
        found = ["--g-loss non-saturating"] if c.g_loss == "saturating" else []
        return found + ["--loss least-squares", f"--lr-d {_lr(c.lr_d / 2)}", "--instance-noise 0.1"]


class DOverpowering(Detector):
    """D classifies (nearly) every real and fake image correctly, record after record."""

    name = event = "d_overpowering"
    counters = ("streak",)

    def examine(self, record: dict) -> dict | None:
        if "d_accuracy" not in record or not self.warmed_up(record):
            return None
        accuracy = record["d_accuracy"]
        records = self.streak(accuracy >= self.config.doctor_d_accuracy)
        if records < self.config.doctor_patience:
            return None
        return {
            "d_accuracy": accuracy,
            "d_real": record.get("d_real"),
            "d_fake": record.get("d_fake"),
            "records": records,
            "explanation": f"D has been right about {accuracy:.1%} of real and fake images for "
            f"{records} records: it wins too easily, and G learns little from a saturated D.",
        }

    def remedies(self) -> list[str]:
        c = self.config
        smoothing = max(0.1, min(0.3, c.label_smoothing + 0.1))
        found = [f"--lr-d {_lr(c.lr_d / 2)}"]
        if c.d_steps > 1:
            found.append("--d-steps 1")
        return found + [
            f"--label-smoothing {smoothing:g}",
            "--instance-noise 0.1",
            "--diffaugment color,translation",
            "--r1 10",
            "--spectral-norm",
        ]


class GOverpowering(Detector):
    """D cannot tell fakes from reals and rates the fakes high: G exploits a weak D. (A good
    G with a well-matched D also drives D to chance, but with D(G(z)) near 0.5, not above it.)"""

    name = event = "g_overpowering"
    counters = ("streak",)

    def examine(self, record: dict) -> dict | None:
        if "d_accuracy" not in record or "d_fake" not in record or not self.warmed_up(record):
            return None
        accuracy, d_fake = record["d_accuracy"], record["d_fake"]
        fooled = accuracy <= self.config.doctor_g_accuracy and d_fake >= self.config.doctor_g_d_fake
        records = self.streak(fooled)
        if records < self.config.doctor_patience:
            return None
        return {
            "d_accuracy": accuracy,
            "d_fake": d_fake,
            "d_real": record.get("d_real"),
            "records": records,
            "explanation": f"For {records} records D was right only {accuracy:.0%} of the time "
            f"and rated fakes {d_fake:.2f} real: D is too weak to teach G anything.",
        }

    def remedies(self) -> list[str]:
        c = self.config
        return [
            f"--lr-d {_lr(c.lr_d * 2)}",
            f"--d-steps {c.d_steps + 1}",
            f"--lr-g {_lr(c.lr_g / 2)}",
        ]


def _collapse_remedies(config: TrainConfig) -> list[str]:
    return [
        "--loss wasserstein",
        "--gp 10",
        "--spectral-norm",
        "--diffaugment color,translation",
        f"--lr-g {_lr(config.lr_g / 2)}",
    ]


class ModeCollapse(Detector):
    """The fixed noise batch's samples are much less diverse than real images."""

    name = event = "mode_collapse"
    counters = ("streak",)

    def examine(self, record: dict) -> dict | None:
        if "diversity" not in record or "diversity_real" not in record:
            return None
        if not self.warmed_up(record):
            return None
        ratio = record["diversity"] / max(record["diversity_real"], 1e-12)
        records = self.streak(ratio < self.config.doctor_diversity)
        if records < self.config.doctor_patience:
            return None
        return {
            "diversity": record["diversity"],
            "diversity_real": record["diversity_real"],
            "ratio": ratio,
            "records": records,
            "explanation": f"Samples of 64 different noise vectors have been only {ratio:.0%} as "
            f"varied as real images for {records} records: G maps many inputs to few outputs.",
        }

    def remedies(self) -> list[str]:
        return _collapse_remedies(self.config)


class ClassCollapse(Detector):
    """An evaluation's class histogram of the samples is concentrated on a few classes."""

    name = "mode_collapse_classes"
    event = "mode_collapse"

    def reads(self, record: dict) -> bool:
        return "eval_kl_to_uniform" in record

    def examine(self, record: dict) -> dict | None:
        kl = record["eval_kl_to_uniform"]
        if not self.warmed_up(record) or kl < self.config.doctor_collapse_kl:
            return None
        found = {"eval_kl_to_uniform": kl}
        for key in ("eval_classes_found", "eval_num_classes"):
            if key in record:
                found[key] = record[key]
        classes = (
            f" ({record['eval_classes_found']:g} of {record['eval_num_classes']:g} classes found)"
            if "eval_classes_found" in record and "eval_num_classes" in record
            else ""
        )
        found["explanation"] = (
            f"The samples' classes are {kl:.2f} nats from uniform{classes}: "
            "G covers only part of the data."
        )
        return found

    def remedies(self) -> list[str]:
        return _collapse_remedies(self.config)


def _wobble(values: list[float]) -> float:
    """Standard deviation around the least-squares line: swings, not a steady trend."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    spread = sum((x - mean_x) ** 2 for x in range(n))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values)) / spread
    residuals = [y - mean_y - slope * (x - mean_x) for x, y in enumerate(values)]
    return math.sqrt(sum(r * r for r in residuals) / n)


class Oscillation(Detector):
    """A loss swings around its trend ever wider: over the last --doctor-window records, the
    second half's swings are --doctor-oscillation-growth times the first half's, and at least
    --doctor-swing of the loss itself."""

    name = event = "oscillation"

    def is_window(self, key: str) -> bool:
        return key in ("loss_d", "loss_g")

    def examine(self, record: dict) -> dict | None:
        found = None
        for key in ("loss_d", "loss_g"):
            if key not in record:
                continue
            self.remember(key, record[key])
            window = self.state[key]
            half = self.config.doctor_window // 2
            if found is not None or len(window) < 2 * half or half < 3:
                continue
            early, late = window[-2 * half : -half], window[-half:]
            before, now = _wobble(early), _wobble(late)
            level = sum(abs(v) for v in late) / half
            growth = now / before if before > 0 else math.inf
            if (
                self.warmed_up(record)
                and growth >= self.config.doctor_oscillation_growth
                and now >= self.config.doctor_swing * level
            ):
                found = {
                    f"{key}_swing_before": before,
                    f"{key}_swing_now": now,
                    "growth": growth,
                    "records": 2 * half,
                    "explanation": f"{key} swings around its trend {growth:.1f}x wider than "
                    f"{half} records ago: the two networks chase each other instead of settling.",
                }
        return found

    def remedies(self) -> list[str]:
        c = self.config
        found = [f"--lr-g {_lr(c.lr_g / 2)}", f"--lr-d {_lr(c.lr_d / 2)}", "--r1 10"]
        return found + (["--ema-decay 0.999"] if c.ema_decay == 0 else [])


class Stalled(Detector):
    """The evaluation metric (--eval-every) has not improved for --doctor-stall-evals
    evaluations: the samples stopped getting better (GAN training's stopping problem)."""

    name = event = "stalled"
    counters = ("streak", "best_step")

    def reads(self, record: dict) -> bool:
        return "eval_best" in record

    def examine(self, record: dict) -> dict | None:
        if record["eval_best"]:
            self.state["best_step"] = record["step"]
        evaluations = self.streak(not record["eval_best"])
        if evaluations < self.config.doctor_stall_evals:
            return None
        metric = f"eval_{self.config.eval_metric}"
        return {
            metric: record.get(metric),
            "evaluations_without_improvement": evaluations,
            "best_step": self.state.get("best_step", 0),
            "explanation": f"{metric} has not improved in {evaluations} evaluations: more steps "
            "are unlikely to help; the best samples are in checkpoints/best.safetensors.",
        }

    def remedies(self) -> list[str]:
        c = self.config
        return [
            f"--early-stop-patience {c.doctor_stall_evals}",
            f"--lr-g {_lr(c.lr_g / 2)}",
            f"--lr-d {_lr(c.lr_d / 2)}",
        ]


def build_detectors(
    config: TrainConfig,
    sampler: str = "generator",
    initial_weight_norms: dict[str, float] | None = None,
) -> list[Detector]:
    return [
        Exploding(config, initial_weight_norms),
        Vanishing(config, sampler),
        DOverpowering(config),
        GOverpowering(config),
        ModeCollapse(config),
        ClassCollapse(config),
        Oscillation(config),
        Stalled(config),
    ]


# ---- events.jsonl on resume ----------------------------------------------------------------------


def truncate_events(path: Path, step: int, rollbacks: int) -> None:
    """Keep the events of the history a checkpoint at `step` that counted `rollbacks` carries
    on: those up to its step, and its rollbacks, whatever their step. A rollback is logged at
    the step that found the NaN, which can be after a checkpoint written once training went
    back (found at 10, back to 5, interrupted at 8)."""

    def earlier_rollback(event: dict) -> bool:
        evidence = event.get("evidence")
        count = evidence.get("rollbacks") if isinstance(evidence, dict) else None
        return event.get("event") == "rollback" and _count(count) and count <= rollbacks

    truncate_records(path, step, keep=earlier_rollback)


# ---- the doctor -------------------------------------------------------------------------------


class Doctor:
    """Signals, detectors, events.jsonl, and the snapshot a non-finite step rolls back to.

    The Trainer calls `signals` before each record, `observe` with each record, `watch` with
    each phase's loss, `check` on each step that writes something, then `snapshot`.
    """

    def __init__(
        self,
        config: TrainConfig,
        family: ModelFamily,
        dataset: ImageDataset | ImageFolder,
        events_path: Path | None,
        device: torch.device,
    ):
        self.config = config
        self.events_path = events_path
        self.family = family
        self.probe = DiversityProbe(family, dataset, config.seed, device)
        # at initialisation: a resumed run rebuilds the same initial weights before loading
        initial = {
            f"weight_norm_{n}": float(weight_norm(net)) for n, net in family.networks.items()
        }
        self.detectors = build_detectors(config, family.sampler, initial)
        self.rollbacks = 0
        self._throttle = {d.name: {"firing": False, "quiet": 0} for d in self.detectors}
        self._printed: set[str] = set()
        self._first_bad: dict[str, torch.Tensor] = {}  # phase -> first step with a bad loss
        self._snapshot: tuple[dict[str, torch.Tensor], dict] | None = None

    # ---- signals and detectors -------------------------------------------------------------
    def signals(self, networks: nn.ModuleDict, sampling_network: nn.Module) -> dict:
        """Weight norms and diversity (unsynced tensors) for the record about to be written."""
        found: dict = {f"weight_norm_{name}": weight_norm(net) for name, net in networks.items()}
        found["diversity"] = self.probe.diversity(sampling_network)
        found["diversity_real"] = self.probe.real
        return found

    @property
    def firing(self) -> list[str]:
        """The events whose problem shows in the latest records."""
        events = [d.event for d in self.detectors if self._throttle[d.name]["firing"]]
        return list(dict.fromkeys(events))

    def observe(self, record: dict) -> list[Event]:
        """Run the detectors on a complete record; write and return the events it raises. A
        detector's event is written when it starts firing, then every --doctor-repeat records
        (of the kind it reads) while it keeps firing."""
        events = []
        for detector in self.detectors:
            if not detector.reads(record):
                continue
            evidence = detector.examine(record)
            throttle = self._throttle[detector.name]
            if evidence is None:
                throttle.update(firing=False, quiet=0)
                continue
            if throttle["firing"] and throttle["quiet"] + 1 < self.config.doctor_repeat:
                throttle["quiet"] += 1
                continue
            throttle.update(firing=True, quiet=0)
            events.append(Event(record["step"], detector.event, evidence, detector.remedies()))
        for event in events:
            self._write(event)
        return events

    def _write(self, event: Event) -> None:
        if self.events_path is None:  # a data-parallel process other than rank 0
            return
        with self.events_path.open("a") as handle:
            handle.write(event.to_json() + "\n")
        if event.event not in self._printed:  # once per kind: the file has them all
            self._printed.add(event.event)
            explanation = event.evidence.get("explanation", "")
            tqdm.write(
                f"ganforge doctor: step {event.step}: {event.event}: {explanation} "
                f"Try: {', '.join(event.remedies)} (all events: {self.events_path})",
                file=sys.stderr,
            )

    # ---- non-finite steps ------------------------------------------------------------------
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
            return f"the {phase} loss was NaN or infinite at step {int(first)}"
        for name, finite in zip(networks, values[len(phases) :]):
            if not finite:
                return f"the {name}'s weights are no longer finite"
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
        tensors, metadata = self._snapshot
        tensors = {name: t.clone() for name, t in tensors.items()}
        metadata = copy.deepcopy(metadata)
        learning_rates = {}
        for name, optimizer in metadata["optimizers"].items():
            for group in optimizer["param_groups"]:
                group["lr"] *= config.nan_lr_factor
                learning_rates[f"lr_{name}"] = group["lr"]
        metadata["doctor"]["rollbacks"] = self.rollbacks
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
            "explanation": f"{problem[0].upper()}{problem[1:]}; training went back to step "
            f"{back_to} with learning rates x{config.nan_lr_factor:g} and skipped the batches "
            "since.",
        }
        self._write(Event(step, "rollback", evidence, remedies + ["--spectral-norm", "--gp 10"]))
        return tensors, metadata

    # ---- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "rollbacks": self.rollbacks,
            "detectors": {
                d.name: {"state": d.state, **self._throttle[d.name]} for d in self.detectors
            },
        }

    def load_state_dict(self, saved: dict | None) -> None:
        """Continue from a checkpoint's doctor state (None: start afresh). All of it is checked
        before any is loaded: a malformed state is a GanforgeError naming the field, never a
        TypeError some records later. A detector the state lacks starts afresh."""
        if saved is not None:
            self._check_saved(saved)
        self.rollbacks = saved["rollbacks"] if saved is not None else 0
        entries = saved["detectors"] if saved is not None else {}
        for detector in self.detectors:
            entry = entries.get(detector.name, {"state": detector.initial_state()})
            detector.state = copy.deepcopy(entry["state"])
            self._throttle[detector.name] = {
                "firing": entry.get("firing", False),
                "quiet": entry.get("quiet", 0),
            }

    def _check_saved(self, saved: object) -> None:
        """The schema of `state_dict`'s result, and each detector's own (`check_state`)."""
        ok = isinstance(saved, dict) and set(saved) == {"rollbacks", "detectors"}
        _require(ok, "doctor", "an object with rollbacks, detectors", saved)
        _require(_count(saved["rollbacks"]), "doctor.rollbacks", _COUNT, saved["rollbacks"])
        entries = saved["detectors"]
        _require(isinstance(entries, dict), "doctor.detectors", "an object", entries)
        by_name = {detector.name: detector for detector in self.detectors}
        for name, entry in entries.items():
            _require(name in by_name, "doctor.detectors", f"keyed by {', '.join(by_name)}", name)
            where = f"doctor.detectors.{name}"
            ok = isinstance(entry, dict) and set(entry) == {"state", "firing", "quiet"}
            _require(ok, where, "an object with state, firing, quiet", entry)
            firing = entry["firing"]
            _require(isinstance(firing, bool), f"{where}.firing", "true or false", firing)
            _require(_count(entry["quiet"]), f"{where}.quiet", _COUNT, entry["quiet"])
            by_name[name].check_state(entry["state"], f"{where}.state")


_COUNT = "a whole number >= 0"


def _require(ok: bool, field: str, expected: str, value: object) -> None:
    if not ok:
        raise GanforgeError(f"{field} must be {expected}, got {brief(value)}")


def _count(value: object) -> bool:
    """A whole number >= 0 that JSON keeps exactly."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _number(value: object) -> bool:
    """A finite number (not true/false) that JSON keeps exactly, as a checkpoint's are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= 2**53 if isinstance(value, int) else math.isfinite(value)

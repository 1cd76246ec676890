"""The detectors: each reads records one at a time and names a problem while it shows, with
the numbers behind it and the flags to try. Everything a detector remembers is plain JSON in
its `state` (saved in checkpoints; its schema: schema.py)."""

from __future__ import annotations

import math

from ganforge.config import TrainConfig
from ganforge.explanations import explained
from ganforge.i18n import N_, _
from ganforge.models.family import UNCONDITIONAL, Kind
from ganforge.training.doctor.events import lr_text as _lr

_MIN_HISTORY = 5  # records a running median needs before it is trusted


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
        """Whether `key` names one of its windows (a list of finite numbers, see `remember`);
        with `counters`, the keys its state may hold (schema.py checks a saved one)."""
        return False

    def reads(self, record: dict) -> bool:
        """Whether `record` says anything about this problem (training or evaluation record)."""
        return "eval_best" not in record

    def examine(self, record: dict) -> dict | None:
        raise NotImplementedError

    def remedies(self) -> list[str]:
        raise NotImplementedError

    def warmed_up(self, record: dict) -> bool:
        """Past the warm-up (warmup_steps)."""
        return record["step"] >= warmup_steps(self.config)

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


def warmup_steps(config: TrainConfig) -> int:
    """The steps before the detectors judge (early training is wild): --doctor-warmup, or by
    default DEFAULT_WARMUP or a fifth of --steps if that is fewer (a 300-step run is judged
    from step 60, not never)."""
    if config.doctor_warmup is not None:
        return config.doctor_warmup
    return min(DEFAULT_WARMUP, config.steps // WARMUP_SHARE)


DEFAULT_WARMUP = 500
WARMUP_SHARE = 5  # by default at most a fifth of the run is warm-up


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
                    **explained(
                        N_("{key} is {value}: training has diverged."), key=key, value=value
                    ),
                }
        factor = self.config.doctor_explode_factor
        for key, initial in self.initial_weight_norms.items():
            value = record.get(key)
            if isinstance(value, (int, float)) and initial > 0 and value > factor * initial:
                return {
                    key: value,
                    "at_initialisation": initial,
                    "factor": value / initial,
                    **explained(
                        N_(
                            "{key} grew to {factor:.0f}x its value at initialisation: the updates "
                            "are far too large for these weights."
                        ),
                        key=key,
                        factor=value / initial,
                    ),
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
                        **explained(
                            N_(
                                "{key} jumped to {factor:.0f}x its running median: updates this "
                                "large throw the networks off course."
                            ),
                            key=key,
                            factor=value / max(median, 1e-12),
                        ),
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
                **explained(
                    N_(
                        "G's gradient fell to {factor:.2g}x its running median while D is right "
                        "{accuracy:.1%} of the time: G has almost nothing to learn from."
                    ),
                    factor=value / median,
                    accuracy=accuracy,
                ),
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
            **explained(
                N_(
                    "D has been right about {accuracy:.1%} of real and fake images for {records} "
                    "records: it wins too easily, and G learns little from a saturated D."
                ),
                accuracy=accuracy,
                records=records,
            ),
        }

    def remedies(self) -> list[str]:
        c = self.config
        smoothing = max(0.1, min(0.3, c.label_smoothing + 0.1))
        # a saturating G loss against a winning D is the vanishing gradient of the course: the
        # non-saturating loss removed this event in its own run (course chapter 5), where
        # label smoothing and instance noise 0.1 did not
        found = ["--g-loss non-saturating"] if c.g_loss == "saturating" else []
        found.append(f"--lr-d {_lr(c.lr_d / 2)}")
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
            **explained(
                N_(
                    "For {records} records D was right only {accuracy:.0%} of the time and rated "
                    "fakes {d_fake:.2f} real: D is too weak to teach G anything."
                ),
                records=records,
                accuracy=accuracy,
                d_fake=d_fake,
            ),
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
    """The fixed noise batch's samples are much less diverse than real images: judged for a
    GAN drawing from noise only. A VAE's samples are blurred, so less varied than real images
    with no collapse at all, and a translator's outputs vary with its sources, its early ones
    blurred too: for them the diversity is recorded, not judged (`judged` False)."""

    name = event = "mode_collapse"
    counters = ("streak",)

    def __init__(self, config: TrainConfig, judged: bool = True):
        super().__init__(config)
        self.judged = judged

    def reads(self, record: dict) -> bool:
        """Not where modes are counted (PointModeCollapse says it more sharply)."""
        return self.judged and super().reads(record) and "modes_captured" not in record

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
            **explained(
                N_(
                    "Samples of 64 different noise vectors have been only {ratio:.0%} as varied as "
                    "real images for {records} records: G maps many inputs to few outputs."
                ),
                ratio=ratio,
                records=records,
            ),
        }

    def remedies(self) -> list[str]:
        return _collapse_remedies(self.config)


class PointModeCollapse(Detector):
    """Point data with modes (ring8, grid25): G's samples of a fixed noise batch leave modes
    uncovered, counted as PacGAN counts them (signals.ModeProbe), record after record."""

    name = "mode_collapse_points"
    event = "mode_collapse"
    counters = ("streak",)

    def reads(self, record: dict) -> bool:
        return "modes_captured" in record and "num_modes" in record

    def examine(self, record: dict) -> dict | None:
        if not self.warmed_up(record):
            return None
        captured, total = record["modes_captured"], record["num_modes"]
        records = self.streak(captured < total)
        if records < self.config.doctor_patience:
            return None
        found = {"modes_captured": captured, "num_modes": total, "records": records}
        if "reverse_kl" in record:
            found["reverse_kl"] = record["reverse_kl"]
        found["explanation"] = _(
            "G's samples have covered only {captured:g} of the {total:g} modes of the data for "
            "{records} records: G maps the noise to part of the data."
        ).format(captured=captured, total=total, records=records)
        return found

    def remedies(self) -> list[str]:
        """The fixes made for collapse first (PacGAN, ProGAN's layer), unless already on."""
        fixes = [] if self.config.pack > 1 else ["--pack 2"]
        fixes += [] if self.config.minibatch_std else ["--minibatch-std"]
        return fixes + _collapse_remedies(self.config)


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
            _(" ({found:g} of {total:g} classes found)").format(
                found=record["eval_classes_found"], total=record["eval_num_classes"]
            )
            if "eval_classes_found" in record and "eval_num_classes" in record
            else ""
        )
        found["explanation"] = _(
            "The samples' classes are {kl:.2f} nats from uniform{classes}: G covers only part "
            "of the data."
        ).format(kl=kl, classes=classes)
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
                    "explanation": _swing_explanation(key, growth, half),
                }
        return found

    def remedies(self) -> list[str]:
        c = self.config
        found = [f"--lr-g {_lr(c.lr_g / 2)}", f"--lr-d {_lr(c.lr_d / 2)}", "--r1 10"]
        return found + (["--ema-decay 0.999"] if c.ema_decay == 0 else [])


def _swing_explanation(key: str, growth: float, records: int) -> str:
    if math.isinf(growth):  # the loss stood still before: no ratio to speak of
        text = _(
            "{key} swings around its trend where {records} records ago it stood still: "
            "the two networks chase each other instead of settling."
        )
    else:
        text = _(
            "{key} swings around its trend {growth:.1f}x wider than {records} "
            "records ago: the two networks chase each other instead of settling."
        )
    return text.format(key=key, growth=growth, records=records)


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
            **explained(
                N_(
                    "{metric} has not improved in {evaluations} evaluations: more steps are "
                    "unlikely to help; the best samples are in checkpoints/best.safetensors."
                ),
                metric=metric,
                evaluations=evaluations,
            ),
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
    kind: Kind = UNCONDITIONAL,
) -> list[Detector]:
    """Every detector, for every family (a checkpoint's doctor state names them all); the
    family's `kind` says which ones judge."""
    collapses = kind.draws_from_noise and not kind.autoencoder
    return [
        Exploding(config, initial_weight_norms),
        Vanishing(config, sampler),
        DOverpowering(config),
        GOverpowering(config),
        ModeCollapse(config, judged=collapses),
        PointModeCollapse(config),
        ClassCollapse(config),
        Oscillation(config),
        Stalled(config),
    ]

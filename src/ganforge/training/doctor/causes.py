"""The run's own options that make a problem likely, each with the change that removes it: the
doctor names them in its events as they fire, and `ganforge doctor RUN` in its prose.

A cause counts only where its fix is an option the run's model takes (built on the meta
device: no memory, no random draws), so a cgan is never told to try `--pack`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ganforge.config import TrainConfig, flag_name
from ganforge.errors import GanforgeError
from ganforge.i18n import _


@dataclass(frozen=True)
class Cause:
    """An option of the run that makes `events` likely, why, and the change that fixes it."""

    events: tuple[str, ...]
    applies: Callable[[TrainConfig], bool]
    reason: Callable[[TrainConfig], str]
    fix: Callable[[TrainConfig], dict[str, Any]]

    def flags(self, config: TrainConfig) -> str:
        """The fix as command-line flags ("--g-loss non-saturating", "--gp 10")."""
        return " ".join(_flag(name, value) for name, value in self.fix(config).items())


def _flag(name: str, value: Any) -> str:
    if value is True:
        return flag_name(name)
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{flag_name(name)} {text}"


CAUSES = (
    Cause(
        ("mode_collapse", "vanishing", "d_overpowering"),
        lambda c: c.g_loss == "saturating",
        lambda c: _(
            "--g-loss saturating: G minimises log(1 - D(G(z))), whose gradient vanishes "
            "exactly when D wins — the textbook reason G gives up on part of the data"
        ),
        lambda c: {"g_loss": "non-saturating"},
    ),
    Cause(
        ("d_overpowering", "vanishing", "mode_collapse"),
        lambda c: c.d_steps > 1,
        lambda c: _("--d-steps {n}: D trains {n} times per G step and races ahead").format(
            n=c.d_steps
        ),
        lambda c: {"d_steps": 1},
    ),
    Cause(
        ("d_overpowering", "vanishing"),
        lambda c: c.lr_d > c.lr_g,
        lambda c: _("--lr-d {lr_d:g} is above --lr-g {lr_g:g}: D learns faster than G").format(
            lr_d=c.lr_d, lr_g=c.lr_g
        ),
        lambda c: {"lr_d": c.lr_d / 2},
    ),
    Cause(
        ("d_overpowering", "vanishing"),
        lambda c: c.label_smoothing == 0 and c.loss == "bce",
        lambda c: _("--label-smoothing 0: D may grow certain (real label 1) and its logits steep"),
        lambda c: {"label_smoothing": 0.1},
    ),
    Cause(
        ("mode_collapse",),
        lambda c: c.pack == 1 and not (c.minibatch_std or c.unroll or c.feature_matching),
        lambda c: _(
            "no collapse remedy is on: D judges each sample alone, so it cannot see that "
            "G repeats itself"
        ),
        lambda c: {"pack": 2},
    ),
    Cause(
        ("mode_collapse",),
        lambda c: bool(c.point_dims) and c.lr_decay == "none",
        lambda c: _(
            "a constant learning rate on points: G's samples keep circling the spots D accepts "
            "instead of settling on them (ring8: 4 of 8 modes at a constant 1e-3, 7 with a "
            "cosine decay)"
        ),
        lambda c: {"lr_decay": "cosine"},
    ),
    Cause(
        ("exploding", "rollback", "oscillation"),
        lambda c: c.loss == "wasserstein" and c.gp == 0 and not c.spectral_norm,
        lambda c: _(
            "--loss wasserstein without --gp or --spectral-norm: the critic is not "
            "kept Lipschitz and its scores grow without bound"
        ),
        lambda c: {"gp": 10.0},
    ),
    Cause(
        ("exploding", "rollback", "oscillation"),
        lambda c: c.optimizer != "sgd" and _rates_over_defaults(c) > RATE_FACTOR,
        lambda c: _(
            "learning rates up to {lr:g}, {factor:.3g}x {model}'s defaults: large steps for "
            "{optimizer} on a GAN"
        ).format(
            lr=max(c.lr_g, c.lr_d),
            factor=_rates_over_defaults(c),
            model=c.model,
            optimizer=c.optimizer,
        ),
        lambda c: {"lr_g": c.lr_g / 2, "lr_d": c.lr_d / 2},
    ),
)


RATE_FACTOR = 2  # rates beyond this many times the model's defaults are called large


def _rates_over_defaults(config: TrainConfig) -> float:
    """How far the run's learning rates go beyond its model's own defaults (the rates measured
    to work, models.registry), as the larger ratio of G's and D's. Adam and RMSprop only: SGD
    has no default rate of its own to compare with."""
    from ganforge.models import list_models, model_defaults

    own = model_defaults(config.model) if config.model in list_models() else {}
    shared = TrainConfig()
    return max(
        config.lr_g / own.get("lr_g", shared.lr_g), config.lr_d / own.get("lr_d", shared.lr_d)
    )


def likely_causes(config: TrainConfig, events: set[str] | tuple[str, ...]) -> list[Cause]:
    """The causes of any of `events` this run's options show, whose fix its model takes."""
    return [
        cause
        for cause in CAUSES
        if set(cause.events) & set(events) and cause.applies(config) and _takes(config, cause)
    ]


def _takes(config: TrainConfig, cause: Cause) -> bool:
    from ganforge.models import describe_model

    changes = cause.fix(config)
    if config.resolution is None and not config.point_dims:  # a config not yet resolved by data
        changes = {"resolution": 32, "channels": config.channels or 1, **changes}
    try:
        describe_model(config.replace(**changes))
    except GanforgeError:
        return False
    return True

"""Tiny training options, for the API and for the command line: tiny networks on the bundled
`digits` dataset, a few steps, so that a run takes well under a second on a 2-core CPU.

Tests import it as `from tiny import ...` (pyproject.toml puts tests/ on the path); a test that
needs other step counts passes overrides: `{**TINY_OPTIONS, "steps": 4}`, `tiny_flags(out,
steps=4)`.
"""

from __future__ import annotations

TINY_OPTIONS = {
    "model": "mlp",
    "data": "digits",
    "width": 8,
    "batch_size": 16,
    "z_dim": 8,
    "steps": 10,
    "seed": 0,
    "progress": False,
    "log_every": 5,
    "checkpoint_every": 100,  # only the final checkpoint
    "sample_every": 100,
    "n_grid": 16,
}

# A tiny GAN on 2-D points (the mode-collapse lab): ring8, a few steps.
TINY_POINTS = {
    "model": "mlp",
    "data": "ring8",
    "z_dim": 2,
    "width": 8,
    "batch_size": 32,
    "steps": 4,
    "log_every": 2,
    "checkpoint_every": 100,
    "sample_every": 100,
    "progress": False,
}

# On the command line: 2 steps, a record at each, small grids.
TINY_CLI = {**TINY_OPTIONS, "steps": 2, "log_every": 2, "n_grid": 4}


def tiny_flags(out, **overrides) -> list[str]:
    """`ganforge train` flags for TINY_CLI into `out`; `overrides` name options with dashes or
    underscores (`steps=3`, `**{"lr-d": 1e-3}`)."""
    options = {**TINY_CLI, "out": out}
    options.update({name.replace("-", "_"): value for name, value in overrides.items()})
    progress = options.pop("progress")
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    return ["train", *flags, *([] if progress else ["--no-progress"])]


def translator_options(model: str) -> dict:
    """What a tiny run of `model` needs besides TINY_OPTIONS: a translator trains on image
    pairs (pix2pix) or on two unpaired sets (cyclegan), at a size its networks take."""
    from ganforge.models import model_kind

    data = model_kind(model).data
    if data == "paired":
        return {"data": "mnist-mini-edges", "resolution": 32}
    if data == "unpaired":
        return {"data": "mnist-mini-edges-unpaired", "resolution": 32}
    return {}

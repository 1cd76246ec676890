"""Writing checkpoints, and the schema of the training state their JSON metadata holds.

The file format (safetensors + a JSON header + a SHA-256, read without unpickling) is
ganforge.checkpoint_file's; here are what training adds: writing a checkpoint atomically,
pruning old ones, the schema every loaded checkpoint's metadata is checked against, and the
optimiser and RNG state packed into flat tensors + JSON."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from ganforge import checkpoint_file
from ganforge.atomic import atomic_path
from ganforge.checkpoint_file import (
    FORMAT,
    MAX_COUNT,
    checkpoint_digest,
    json_number,
    list_checkpoints,
    whole_number,
)
from ganforge.errors import GanforgeError, brief
from ganforge.training.doctor.schema import check_doctor_state

_INDEX = re.compile(r"[0-9]{1,9}")  # an optimiser's parameter index, as it appears in names


def save_checkpoint(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoints untouched. The
    header carries a SHA-256 of every tensor's bytes, checked on load. A diverged state (a
    NaN or infinity in any float tensor) is refused: it is worth nothing to resume from."""
    ready = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    for name, tensor in ready.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GanforgeError(
                f"not writing checkpoint '{path}': tensor '{name}' holds NaN or infinity "
                "(training diverged); the previous checkpoints are kept"
            )
    document = {"format": FORMAT, **metadata}
    document["sha256"] = checkpoint_digest(ready, document)
    header = {"ganforge": json.dumps(document, sort_keys=True)}
    try:
        with atomic_path(path) as tmp:
            save_file(ready, str(tmp), metadata=header)
    except (OSError, SafetensorError) as exc:  # disk full, permissions: older files stay
        reason = getattr(exc, "strerror", None) or exc
        raise GanforgeError(
            f"cannot write checkpoint '{path}': {reason}; the previous checkpoints are kept"
        ) from None


def load_checkpoint(
    path: str | Path,
    expected: dict[str, torch.Tensor] | None = None,
    config_file: str | Path | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """checkpoint_file.load_checkpoint, with every field of the training state that the file
    holds checked (check_metadata)."""
    return checkpoint_file.load_checkpoint(path, expected, config_file, check=check_metadata)


def load_newest_valid(
    folder: str | Path,
    complete: bool = False,
    expected: dict[str, torch.Tensor] | None = None,
    config_file: str | Path | None = None,
) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """checkpoint_file.load_newest_valid with check_metadata; with `complete`, a checkpoint
    must also hold everything a resume needs."""
    check = functools.partial(check_metadata, complete=complete)
    return checkpoint_file.load_newest_valid(folder, expected, config_file, check=check)


# ---- the metadata's schema ----------------------------------------------------------------


def check_metadata(metadata: dict[str, Any], path: str | Path, complete: bool = False) -> None:
    """Check the type and range of every field of a checkpoint's JSON metadata that ganforge
    reads (with `complete`, every field a resume needs must be there too); a wrong one is a
    GanforgeError naming the file and the field. The checksum proves that a file is whole, not
    that ganforge wrote it: an edited file can carry a recomputed checksum.

    Fields: step, data_position.{epoch,batch}: whole numbers in [0, 2^53]; config_hash: text;
    logbook: {counts: {stat: count >= 1}, images: count}; optimizers: {network: {param_groups:
    [{params: [index], lr: number >= 0, ...}], plain_state: {index: {key: number}}}};
    evaluation (optional): {key, best, best_step, since_best}; doctor (optional): {rollbacks:
    count, detectors: {...}} (training/doctor/schema.py, which the Doctor checks again with its
    detectors' own keys when it loads the state).
    """
    fields = _Fields(path, complete)
    fields.count(metadata, "step")
    fields.get(metadata, "config_hash", str, "text")
    position = fields.get(metadata, "data_position", dict, "an object")
    if position is not None:
        for name in ("epoch", "batch"):
            fields.count(position, name, "data_position.")
    logbook = fields.get(metadata, "logbook", dict, "an object")
    if logbook is not None:
        counts = fields.get(logbook, "counts", dict, "an object", "logbook.")
        for name, count in (counts or {}).items():
            fields.require(
                whole_number(count, low=1), f"logbook.counts.{name}", "a count >= 1", count
            )
        fields.count(logbook, "images", "logbook.")
    optimizers = fields.get(metadata, "optimizers", dict, "an object")
    for network, state in (optimizers or {}).items():
        _check_optimizer_meta(fields, state, f"optimizers.{network}")
    if metadata.get("evaluation") is not None:
        _check_evaluation_meta(fields, metadata["evaluation"])
    if metadata.get("doctor") is not None:
        try:
            check_doctor_state(metadata["doctor"])  # its schema lives with the doctor
        except GanforgeError as exc:
            raise GanforgeError(f"checkpoint '{path}' is invalid: {exc}") from None
    if metadata.get("scalers") is not None:
        _check_scalers_meta(fields, metadata["scalers"])


_NOT_NEGATIVE = ("lr", "base_lr", "eps", "weight_decay")  # optimiser settings that must be >= 0
# No real learning rate, momentum or decay comes near this; torch's float32 arithmetic
# overflows (a RuntimeError, mid-step) on settings near 1e38.
MAX_SETTING = 1e6


def _check_optimizer_meta(fields: _Fields, state: object, where: str) -> None:
    fields.require(isinstance(state, dict), where, "an object", state)
    groups = fields.get(state, "param_groups", list, "a list", where + ".", required=True)
    for i, group in enumerate(groups):
        at = f"{where}.param_groups[{i}]"
        fields.require(isinstance(group, dict), at, "an object", group)
        params = fields.get(group, "params", list, "a list", at + ".", required=True)
        for index in params:
            fields.require(whole_number(index), f"{at}.params", "a list of indices", index)
        for key, value in group.items():
            if key == "params":
                continue
            if key == "betas":
                ok = isinstance(value, list) and all(json_number(b, 0.0, 1.0) for b in value)
                fields.require(ok, f"{at}.betas", "numbers in [0, 1)", value)
            elif key in _NOT_NEGATIVE:
                ok = json_number(value, 0.0, MAX_SETTING)
                fields.require(ok, f"{at}.{key}", f"a number in [0, {MAX_SETTING:g})", value)
            else:
                ok = _plain(value, MAX_SETTING)
                expected = f"a number in (-{MAX_SETTING:g}, {MAX_SETTING:g}), true/false or null"
                fields.require(ok, f"{at}.{key}", expected, value)
    plain = fields.get(state, "plain_state", dict, "an object", where + ".", required=True)
    for index, entries in plain.items():
        at = f"{where}.plain_state.{index}"
        fields.require(_INDEX.fullmatch(index) is not None, at, "keyed by an index", index)
        fields.require(isinstance(entries, dict), at, "an object", entries)
        for key, value in entries.items():
            fields.require(_plain(value), f"{at}.{key}", "a number, true/false or null", value)


def _check_scalers_meta(fields: _Fields, scalers: object) -> None:
    """--precision fp16's gradient scalers (torch.amp.GradScaler.state_dict), by phase."""
    fields.require(isinstance(scalers, dict), "scalers", "an object", scalers)
    for phase, state in scalers.items():
        where = f"scalers.{phase}"
        fields.require(isinstance(state, dict), where, "an object", state)
        for key in ("scale", "growth_factor", "backoff_factor"):
            value = state.get(key)
            ok = json_number(value, 0.0, float("inf")) and value > 0
            fields.require(ok, f"{where}.{key}", "a positive number", value)
        for key in ("growth_interval", "_growth_tracker"):
            ok = whole_number(state.get(key))
            fields.require(ok, f"{where}.{key}", "a whole number >= 0", state.get(key))


def _check_evaluation_meta(fields: _Fields, state: object) -> None:
    keys = {"key", "best", "best_step", "since_best"}
    ok = isinstance(state, dict) and set(state) == keys
    fields.require(ok, "evaluation", f"an object with {', '.join(sorted(keys))}", state)
    fields.get(state, "key", str, "text", "evaluation.")
    best = state["best"]
    fields.require(best is None or json_number(best), "evaluation.best", "a number or null", best)
    fields.count(state, "best_step", "evaluation.")
    fields.count(state, "since_best", "evaluation.")


class _Fields:
    """Checks one checkpoint's fields; the first wrong one is a GanforgeError naming it."""

    def __init__(self, path: str | Path, complete: bool):
        self.path, self.complete = path, complete

    def require(self, ok: bool, field: str, expected: str, value: object) -> None:
        if not ok:
            raise GanforgeError(
                f"checkpoint '{self.path}' is invalid: {field} must be {expected}, "
                f"got {brief(value)}"
            )

    def get(
        self,
        document: dict,
        name: str,
        kind: type,
        expected: str,
        prefix: str = "",
        required: bool = False,
    ) -> Any:
        """`document[name]` if it is a `kind`; None if it is absent and not required."""
        if name not in document:
            if required or self.complete:
                raise GanforgeError(f"checkpoint '{self.path}' is invalid: it lacks {prefix}{name}")
            return None
        value = document[name]
        self.require(isinstance(value, kind), prefix + name, expected, value)
        return value

    def count(self, document: dict, name: str, prefix: str = "") -> None:
        if name in document or self.complete:
            value = self.get(document, name, object, "", prefix)
            self.require(
                whole_number(value), prefix + name, f"a whole number in [0, {MAX_COUNT}]", value
            )


def _plain(value: object, limit: float = MAX_COUNT) -> bool:
    """null, true/false, or a finite number in (-limit, limit)."""
    return value is None or isinstance(value, bool) or (json_number(value) and abs(value) < limit)


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete temporary files a killed process left mid-write (never a finished checkpoint)."""
    for leftover in Path(folder).glob(".step_*.tmp"):
        leftover.unlink(missing_ok=True)


def prune_checkpoints(
    folder: str | Path, keep: int, newest_valid: str | Path | None = None
) -> None:
    """Delete all but the newest `keep` checkpoints, but never the newest one that verifies:
    `newest_valid` (the one just written), or else the newest that loads and verifies. A
    damaged checkpoint of a later step (one that `--resume` skipped) is not a reason to
    delete the good ones."""
    found = list_checkpoints(folder)
    kept = {path.name for _, path in found[-keep:]} if keep > 0 else set()
    if newest_valid is None:
        newest_valid = _newest_verifying(found)
    if newest_valid is not None:
        kept.add(Path(newest_valid).name)
    for _, path in found:
        if path.name not in kept:
            path.unlink(missing_ok=True)


def _newest_verifying(found: list[tuple[int, Path]]) -> Path | None:
    for _, path in reversed(found):
        try:
            load_checkpoint(path)
        except GanforgeError:
            continue
        return path
    return None


def pack_optimizer(
    prefix: str, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state_dict into tensors and a JSON-safe remainder."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{index}.{key}"] = value
            else:
                plain_state.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "plain_state": plain_state}


IMPLEMENTATION_SETTINGS = ("fused", "foreach", "capturable", "differentiable")


def unpack_optimizer(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    """Load what pack_optimizer wrote (`meta` already passed check_metadata) into `optimizer`,
    after checking it fits: the same parameter groups, one state tensor of each parameter's
    shape. A setting the checkpoint lacks keeps the optimiser's own value."""
    live_groups = optimizer.state_dict()["param_groups"]
    params = [param for group in optimizer.param_groups for param in group["params"]]
    if len(meta["param_groups"]) != len(live_groups):
        raise GanforgeError(
            f"{prefix}: {len(meta['param_groups'])} parameter groups for an optimiser with "
            f"{len(live_groups)}"
        )
    groups = []
    for i, (saved, live) in enumerate(zip(meta["param_groups"], live_groups)):
        if saved["params"] != live["params"]:
            raise GanforgeError(f"{prefix}.param_groups[{i}]: its parameters do not match")
        group = {**live, **saved}
        # how the update is computed (fused, foreach kernels) is this device's choice, not
        # the checkpoint's: a run may resume on another device (training/fast_paths.py)
        group.update({key: live[key] for key in IMPLEMENTATION_SETTINGS if key in live})
        for key, value in live.items():
            if not _same_kind(group[key], value):
                raise GanforgeError(
                    f"{prefix}.param_groups[{i}].{key}: expected a value like {brief(value)}, "
                    f"got {brief(group[key])}"
                )
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    state: dict[int, dict[str, Any]] = {}
    start = prefix + ".state."
    for name, value in tensors.items():
        if name.startswith(start):
            index, _, key = name[len(start) :].partition(".")
            if not _INDEX.fullmatch(index) or int(index) >= len(params) or not key:
                raise GanforgeError(f"tensor '{name}' names no parameter of {prefix}")
            shape = params[int(index)].shape
            fits = value.shape == shape or (key == "step" and value.dim() == 0)
            if not fits or not value.is_floating_point():
                raise GanforgeError(
                    f"tensor '{name}': {value.dtype} {tuple(value.shape)} does not fit a "
                    f"parameter of shape {tuple(shape)}"
                )
            state.setdefault(int(index), {})[key] = value
    for index, entries in meta["plain_state"].items():
        if int(index) >= len(params):
            raise GanforgeError(f"{prefix}.plain_state.{index} names no parameter")
        state.setdefault(int(index), {}).update(entries)
    if len({frozenset(entries) for entries in state.values()}) > 1:
        raise GanforgeError(f"{prefix}: the saved states of its parameters differ in kind")
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    _match_memory_format(optimizer)


def _match_memory_format(optimizer: torch.optim.Optimizer) -> None:
    """Lay each state tensor out in memory as its parameter is (a channels-last convolution's,
    training/fast_paths.py): files hold contiguous tensors, and the fused Adam kernel reads a
    parameter and its state element by element in memory order, so a mismatch would update
    weights with the moments of other weights."""
    for param, entries in optimizer.state.items():
        for key, value in entries.items():
            fits = isinstance(value, torch.Tensor) and value.shape == param.shape
            if fits and value.stride() != param.stride():
                entries[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _same_kind(saved: object, live: object) -> bool:
    """Whether a saved optimiser setting can stand in for the live one: a flag for a flag
    (or unset), a number for a number, a list of as many numbers for a tuple."""
    if live is None or isinstance(live, bool):
        return saved is None or isinstance(saved, bool)
    if isinstance(live, (int, float)):
        return isinstance(saved, (int, float)) and not isinstance(saved, bool)
    if isinstance(live, (tuple, list)):
        return isinstance(saved, (tuple, list)) and len(saved) == len(live)
    return type(saved) is type(live)


def pack_rng() -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    return tensors


def unpack_rng(tensors: dict[str, torch.Tensor]) -> None:
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    try:
        torch.set_rng_state(tensors["rng.torch"])
        if cuda_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_states)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise GanforgeError(f"checkpoint holds no valid random generator state ({exc})") from None

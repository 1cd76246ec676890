"""Checkpoints as safetensors: tensors for weights, optimiser moments and RNG state, and one
JSON document in the safetensors header for everything else. Loading never unpickles."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganforge.atomic import atomic_path
from ganforge.errors import GanforgeError, brief

FORMAT = "ganforge-checkpoint/1"
_STEP_FILE = re.compile(r"^step_(\d+)\.safetensors$")
_INDEX = re.compile(r"[0-9]{1,9}")  # an optimiser's parameter index, as it appears in names
MAX_COUNT = 2**53  # JSON-safe whole numbers; far above any real step, epoch, batch or count


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.safetensors"


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


def checkpoint_digest(tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> str:
    """SHA-256 over the metadata (less the digest itself) and every tensor's name, dtype,
    shape and bytes, in name order: any damage to the file changes it."""
    digest = hashlib.sha256()
    plain = {key: value for key, value in document.items() if key != "sha256"}
    digest.update(json.dumps(plain, sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class CheckpointMismatch(GanforgeError):
    """A whole checkpoint whose tensors do not fit the network its run's config builds (an
    edited config.json): no other checkpoint of the run would fit either."""


def load_checkpoint(
    path: str | Path,
    expected: Mapping[str, torch.Tensor] | None = None,
    config_file: str | Path | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify tensors and metadata; any damage is a GanforgeError naming the file.

    The header is checked before any tensor is read: every declared tensor must fit in the
    file, and with `expected` (the network tensors the run's config builds, by name; from
    `config_file`) a network tensor must have the network's shape and nothing else may
    be larger than the network's largest, so a file cannot make ganforge allocate more than
    a checkpoint of this network holds (a sparse file of a few KB can declare gigabytes).
    Floating tensors must be finite: a NaN weight would be sampled, or resumed, silently."""
    path = Path(path)
    header, data_size = read_header(path)
    declared = _declared_tensors(path, header, data_size)
    if expected is not None:
        _check_expected(path, declared, expected, config_file)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types on damaged files
        raise GanforgeError(f"cannot read checkpoint '{path}': {exc}") from None
    document = header.get("__metadata__")
    try:
        metadata = json.loads(document["ganforge"])
    except (KeyError, TypeError, ValueError, RecursionError):  # ValueError: bad JSON, a
        raise GanforgeError(  # 5,000-digit number
            f"'{path}' is not a ganforge checkpoint (no ganforge metadata)"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise GanforgeError(f"'{path}': unsupported checkpoint format {brief(found)}")
    try:
        whole = metadata.get("sha256") == checkpoint_digest(tensors, metadata)
    except (ValueError, RecursionError):
        whole = False
    if not whole:
        raise GanforgeError(f"checkpoint '{path}' is damaged: it fails its checksum")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise GanforgeError(
                f"checkpoint '{path}' holds NaN or infinity in tensor '{name}': it cannot be "
                "sampled or resumed from"
            )
    check_metadata(metadata, path)
    return tensors, metadata


def load_newest_valid(
    folder: str | Path,
    complete: bool = False,
    expected: Mapping[str, torch.Tensor] | None = None,
    config_file: str | Path | None = None,
) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """The newest checkpoint in `folder` that loads and verifies (and, with `complete`, holds
    everything a resume needs); damaged newer ones are skipped with a warning naming them (a
    crash can only leave an older one behind, but a disk can damage anything). A checkpoint
    that does not fit the network (`expected`, load_checkpoint) stops the search: the
    config, not the file, is wrong."""
    found = list_checkpoints(folder)
    if not found:
        raise GanforgeError(f"'{folder}' holds no checkpoint")
    problems = []
    for _, path in reversed(found):
        try:
            tensors, metadata = load_checkpoint(path, expected, config_file)
            if complete:
                check_metadata(metadata, path, complete=True)
        except CheckpointMismatch:
            raise
        except GanforgeError as exc:
            problems.append(str(exc))
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        return path, tensors, metadata
    raise GanforgeError(f"no valid checkpoint in '{folder}': {problems[0]}")


# ---- the safetensors header, read before any tensor -------------------------------------

MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on its JSON header
MAX_DIMENSIONS = 32
# bytes per element of each safetensors dtype
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
# Tensors besides the networks' (optimiser moments, RNG states, logbook sums): none larger
# than the largest network tensor or this many elements, and all of them together no more
# than this many times the networks' bytes (Adam keeps two moments of each trained weight,
# RMSprop up to three) plus EXTRA_BYTES.
OTHER_ELEMENTS = 2**20
STATE_FACTOR = 4
EXTRA_BYTES = 2**24


def read_header(path: str | Path) -> tuple[dict, int]:
    """The JSON header of a safetensors file and the size of its data section, read without
    reading any tensor: an 8-byte little-endian length (bounded by the file and by
    MAX_HEADER_BYTES), then that many bytes of JSON. Only a regular file is opened (a FIFO
    named like a checkpoint would block a plain open forever)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise GanforgeError(f"checkpoint '{path}' is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise GanforgeError(f"cannot read checkpoint '{path}': {exc.strerror or exc}") from None
    try:
        size = os.fstat(fd).st_size
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since the stat above
            raise GanforgeError(f"checkpoint '{path}' is not a regular file")
        length = int.from_bytes(_read_at(fd, 8, 0), "little") if size >= 8 else -1
        if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
            raise GanforgeError(
                f"cannot read checkpoint '{path}': not a safetensors file (a header of "
                f"{length} bytes in a file of {size})"
            )
        raw = _read_at(fd, length, 8)
    except OSError as exc:
        raise GanforgeError(f"cannot read checkpoint '{path}': {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise GanforgeError(f"cannot read checkpoint '{path}': its header is not a JSON object")
    return header, size - 8 - length


def _read_at(fd: int, count: int, offset: int) -> bytes:
    chunks = []
    while count > 0:
        chunk = os.pread(fd, count, offset)
        if not chunk:
            break
        chunks.append(chunk)
        count, offset = count - len(chunk), offset + len(chunk)
    return b"".join(chunks)


def _declared_tensors(path: Path, header: dict, data_size: int) -> dict[str, tuple[tuple, int]]:
    """(shape, bytes) of every tensor the header declares, each checked against the file:
    a known dtype, a shape of whole numbers, data_offsets inside the data section that
    hold exactly that many bytes; all of them together no more than the data section."""
    declared: dict[str, tuple[tuple, int]] = {}
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        ok = (
            isinstance(entry, dict)
            and entry.get("dtype") in DTYPE_BYTES
            and isinstance(shape, list)
            and len(shape) <= MAX_DIMENSIONS
            and all(_whole(n) for n in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(_whole(n) for n in offsets)
            and offsets[0] <= offsets[1] <= data_size
        )
        if not ok:
            raise GanforgeError(
                f"checkpoint '{path}' is damaged: tensor {brief(name)} is declared as "
                f"{brief(entry)} in a data section of {data_size} bytes"
            )
        size = math.prod(shape) * DTYPE_BYTES[entry["dtype"]]
        if size != offsets[1] - offsets[0]:
            raise GanforgeError(
                f"checkpoint '{path}' is damaged: tensor {brief(name)} declares "
                f"{entry['dtype']} {tuple(shape)} ({size} bytes) in {offsets[1] - offsets[0]}"
            )
        total += size
        declared[name] = (tuple(shape), size)
    if total > data_size:
        raise GanforgeError(
            f"checkpoint '{path}' is damaged: its tensors declare {total} bytes in a data "
            f"section of {data_size}"
        )
    return declared


def _check_expected(
    path: Path,
    declared: dict[str, tuple[tuple, int]],
    expected: Mapping[str, torch.Tensor],
    config_file: str | Path | None,
) -> None:
    """Declared tensors against the network's: the same shape for a network tensor, no
    other one larger than the largest network tensor (or OTHER_ELEMENTS), and no more
    bytes in all than a checkpoint of this network can hold."""
    source = f" of '{config_file}'" if config_file else ""
    for name, (shape, _) in declared.items():
        tensor = expected.get(name)
        if tensor is not None and shape != tuple(tensor.shape):
            network = ".".join(name.split(".")[:2])
            raise CheckpointMismatch(
                f"checkpoint '{path}' does not match network '{network}'{source}: tensor "
                f"'{name}' is {shape} in the checkpoint, {tuple(tensor.shape)} in the network "
                f"(was {config_file or 'the config'} edited?)"
            )
    largest = max([OTHER_ELEMENTS, *(tensor.numel() for tensor in expected.values())])
    network_bytes = sum(tensor.numel() * tensor.element_size() for tensor in expected.values())
    for name, (shape, _) in declared.items():
        if name not in expected and math.prod(shape) > largest:
            raise GanforgeError(
                f"checkpoint '{path}' is damaged: tensor {brief(name)} declares {shape}, "
                f"larger than any tensor of the network{source}"
            )
    total = sum(size for _, size in declared.values())
    if total > (1 + STATE_FACTOR) * network_bytes + EXTRA_BYTES:
        raise GanforgeError(
            f"checkpoint '{path}' is damaged: its tensors declare {total} bytes, more than a "
            f"checkpoint of the network{source} holds ({network_bytes} bytes of weights)"
        )


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
    count, detectors: {name: {state: {key: number or [numbers]}, firing: true/false, quiet:
    count}}} (Doctor.load_state_dict also checks each detector's own keys when it loads them).
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
            fields.require(_whole(count, low=1), f"logbook.counts.{name}", "a count >= 1", count)
        fields.count(logbook, "images", "logbook.")
    optimizers = fields.get(metadata, "optimizers", dict, "an object")
    for network, state in (optimizers or {}).items():
        _check_optimizer_meta(fields, state, f"optimizers.{network}")
    if metadata.get("evaluation") is not None:
        _check_evaluation_meta(fields, metadata["evaluation"])
    if metadata.get("doctor") is not None:
        _check_doctor_meta(fields, metadata["doctor"])
    if metadata.get("scalers") is not None:
        _check_scalers_meta(fields, metadata["scalers"])


_NOT_NEGATIVE = ("lr", "eps", "weight_decay")  # optimiser settings that must be >= 0
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
            fields.require(_whole(index), f"{at}.params", "a list of indices", index)
        for key, value in group.items():
            if key == "params":
                continue
            if key == "betas":
                ok = isinstance(value, list) and all(_number(b, 0.0, 1.0) for b in value)
                fields.require(ok, f"{at}.betas", "numbers in [0, 1)", value)
            elif key in _NOT_NEGATIVE:
                ok = _number(value, 0.0, MAX_SETTING)
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
            ok = _number(value, 0.0, float("inf")) and value > 0
            fields.require(ok, f"{where}.{key}", "a positive number", value)
        for key in ("growth_interval", "_growth_tracker"):
            ok = _whole(state.get(key))
            fields.require(ok, f"{where}.{key}", "a whole number >= 0", state.get(key))


def _check_evaluation_meta(fields: _Fields, state: object) -> None:
    keys = {"key", "best", "best_step", "since_best"}
    ok = isinstance(state, dict) and set(state) == keys
    fields.require(ok, "evaluation", f"an object with {', '.join(sorted(keys))}", state)
    fields.get(state, "key", str, "text", "evaluation.")
    best = state["best"]
    fields.require(best is None or _number(best), "evaluation.best", "a number or null", best)
    fields.count(state, "best_step", "evaluation.")
    fields.count(state, "since_best", "evaluation.")


def _check_doctor_meta(fields: _Fields, state: object) -> None:
    fields.require(isinstance(state, dict), "doctor", "an object", state)
    rollbacks = fields.get(state, "rollbacks", int, "a whole number", "doctor.", required=True)
    fields.require(_whole(rollbacks), "doctor.rollbacks", f"in [0, {MAX_COUNT}]", rollbacks)
    detectors = fields.get(state, "detectors", dict, "an object", "doctor.", required=True)
    for name, entry in detectors.items():
        at = f"doctor.detectors.{name}"
        ok = isinstance(entry, dict) and set(entry) == {"state", "firing", "quiet"}
        fields.require(ok, at, "an object with state, firing, quiet", entry)
        firing = entry["firing"]
        fields.require(isinstance(firing, bool), f"{at}.firing", "true/false", firing)
        fields.require(_whole(entry["quiet"]), f"{at}.quiet", "a whole number", entry["quiet"])
        values = entry["state"]
        fields.require(isinstance(values, dict), f"{at}.state", "an object", values)
        for key, value in values.items():
            ok = _number(value) or (isinstance(value, list) and all(map(_number, value)))
            fields.require(ok, f"{at}.state.{key}", "a number or a list of numbers", value)


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
            self.require(_whole(value), prefix + name, f"a whole number in [0, {MAX_COUNT}]", value)


def _whole(value: object, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_COUNT


def _number(value: object, low: float | None = None, high: float | None = None) -> bool:
    """A finite JSON number (not true/false), in [low, high) where given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int) and abs(value) > MAX_COUNT:  # beyond float range, or near it
        return False
    if not math.isfinite(value):
        return False
    return (low is None or value >= low) and (high is None or value < high)


def _plain(value: object, limit: float = MAX_COUNT) -> bool:
    """null, true/false, or a finite number in (-limit, limit)."""
    return value is None or isinstance(value, bool) or (_number(value) and abs(value) < limit)


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in `folder`, oldest first: regular files only (a FIFO
    or a device named like a checkpoint is left out; opening it could block)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _STEP_FILE.match(path.name)
        if match and _is_regular(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


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


# ---- packing training state into flat tensors + JSON ----------------------------------


def pack_module(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": value for name, value in module.state_dict().items()}


def expected_tensors(networks: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint holds for `networks` (name -> module, the EMA copy under its
    own name), by their names in the file: what load_checkpoint checks a header against."""
    found: dict[str, torch.Tensor] = {}
    for name, network in networks.items():
        found.update(pack_module(f"networks.{name}", network))
    return found


def unpack_module(
    prefix: str,
    module: torch.nn.Module,
    tensors: dict[str, torch.Tensor],
    checkpoint: str | Path | None = None,
    config_file: str | Path | None = None,
) -> None:
    """Load the tensors under `prefix` into `module`; a mismatch names `checkpoint` and the
    `config_file` the module was built from, where given."""
    start = prefix + "."
    state = {name[len(start) :]: value for name, value in tensors.items() if name.startswith(start)}
    where = f"checkpoint '{checkpoint}'" if checkpoint else "checkpoint"
    source = f" of '{config_file}'" if config_file else ""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        reason = str(exc).split("\n\t")[-1]
        raise GanforgeError(
            f"{where} does not match network '{prefix}'{source}: {reason}"
        ) from None
    if missing or unexpected:
        raise GanforgeError(
            f"{where} does not match network '{prefix}'{source}: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )


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

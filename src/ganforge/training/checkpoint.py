"""Checkpoints as safetensors: tensors for weights, optimiser moments and RNG state, and one
JSON document in the safetensors header for everything else. Loading never unpickles."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ganforge.atomic import atomic_path
from ganforge.errors import GanforgeError

FORMAT = "ganforge-checkpoint/1"
_STEP_FILE = re.compile(r"^step_(\d+)\.safetensors$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.safetensors"


def save_checkpoint(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Write atomically: a crash mid-write leaves the previous checkpoints untouched. The
    header carries a SHA-256 of every tensor's bytes, checked on load."""
    ready = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
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


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify tensors and metadata; any damage is a GanforgeError naming the file."""
    path = Path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises several types on damaged files
        raise GanforgeError(f"cannot read checkpoint '{path}': {exc}") from None
    try:
        metadata = json.loads(header["ganforge"])
    except (KeyError, json.JSONDecodeError):
        raise GanforgeError(
            f"'{path}' is not a ganforge checkpoint (no ganforge metadata)"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise GanforgeError(f"'{path}': unsupported checkpoint format {found!r}")
    if metadata.get("sha256") != checkpoint_digest(tensors, metadata):
        raise GanforgeError(f"checkpoint '{path}' is damaged: it fails its checksum")
    return tensors, metadata


def load_newest_valid(folder: str | Path) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """The newest checkpoint in `folder` that loads and verifies; damaged newer ones are
    skipped with a warning naming them (a crash can only leave an older one behind, but a
    disk can damage anything)."""
    found = list_checkpoints(folder)
    if not found:
        raise GanforgeError(f"'{folder}' holds no checkpoint")
    problems = []
    for _, path in reversed(found):
        try:
            tensors, metadata = load_checkpoint(path)
        except GanforgeError as exc:
            problems.append(str(exc))
            warnings.warn(f"skipping {exc}", stacklevel=2)
            continue
        return path, tensors, metadata
    raise GanforgeError(f"no valid checkpoint in '{folder}': {problems[0]}")


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _STEP_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete temporary files a killed process left mid-write (never a finished checkpoint)."""
    for leftover in Path(folder).glob(".step_*.tmp"):
        leftover.unlink(missing_ok=True)


def prune_checkpoints(folder: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for _, path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)


# ---- packing training state into flat tensors + JSON ----------------------------------


def pack_module(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": value for name, value in module.state_dict().items()}


def unpack_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    start = prefix + "."
    state = {name[len(start) :]: value for name, value in tensors.items() if name.startswith(start)}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise GanforgeError(
            f"checkpoint does not match network '{prefix}': missing {missing[:3]}, "
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


def unpack_optimizer(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    start = prefix + ".state."
    for name, value in tensors.items():
        if name.startswith(start):
            index, key = name[len(start) :].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    for index, entries in meta["plain_state"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def pack_rng() -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    return tensors


def unpack_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)

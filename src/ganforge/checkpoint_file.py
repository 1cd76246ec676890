"""A checkpoint file, readable without the training code: safetensors tensors and one JSON
document in the safetensors header, with a SHA-256 over both. Reading never unpickles, checks
the header before any tensor is read, and refuses a NaN or infinite tensor.

What the JSON holds besides its format and checksum (the training state) is the training's
business: `load_checkpoint(check=...)` takes its schema (training/checkpoint.py), and a reader
that only takes the weights (ganforge.run) needs none."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ganforge.errors import GanforgeError, brief

FORMAT = "ganforge-checkpoint/1"
_STEP_FILE = re.compile(r"^step_(\d+)\.safetensors$")
MAX_COUNT = 2**53  # JSON-safe whole numbers; far above any real step, epoch, batch or count
# checks a checkpoint's JSON metadata (and the file's path, to name it): raises a GanforgeError
MetadataCheck = Callable[[dict, Path], None]


def whole_number(value: object, low: int = 0) -> bool:
    """A whole number (not true/false) in [low, MAX_COUNT], as JSON keeps it exactly."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_COUNT


def json_number(value: object, low: float | None = None, high: float | None = None) -> bool:
    """A finite JSON number (not true/false), in [low, high) where given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int) and abs(value) > MAX_COUNT:  # beyond float range, or near it
        return False
    if not math.isfinite(value):
        return False
    return (low is None or value >= low) and (high is None or value < high)


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.safetensors"


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
    check: MetadataCheck | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify tensors and metadata; any damage is a GanforgeError naming the file.
    `check` (the training's schema of the metadata) runs last, on a file that verified.

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
    if check is not None:
        check(metadata, path)
    return tensors, metadata


def load_newest_valid(
    folder: str | Path,
    expected: Mapping[str, torch.Tensor] | None = None,
    config_file: str | Path | None = None,
    check: MetadataCheck | None = None,
) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """The newest checkpoint in `folder` that loads, verifies and passes `check`; damaged newer
    ones are skipped with a warning naming them (a crash can only leave an older one behind,
    but a disk can damage anything). A checkpoint that does not fit the network (`expected`,
    load_checkpoint) stops the search: the config, not the file, is wrong."""
    found = list_checkpoints(folder)
    if not found:
        raise GanforgeError(f"'{folder}' holds no checkpoint")
    problems = []
    for _, path in reversed(found):
        try:
            tensors, metadata = load_checkpoint(path, expected, config_file, check)
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
            and all(whole_number(n) for n in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(whole_number(n) for n in offsets)
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


# ---- network weights by name -------------------------------------------------------------


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

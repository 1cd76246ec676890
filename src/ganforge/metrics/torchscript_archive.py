"""Reading the tensors of a TorchScript archive without running it (no torch.jit, no code).

A TorchScript .pt file is a zip: data.pkl (a pickle of the module tree) plus data/<key> files
of raw storage bytes. Unpickling data.pkl normally may run code; here a restricted unpickler
allows only tensor rebuilding, storage types, OrderedDict and int lists, and stands a
code-free placeholder in for every `__torch__.*` module class, so only tensors and module
attributes come out. Used to import the standard FID Inception weights (inception.py).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import torch

from ganforge.errors import GanforgeError


class _ScriptObject:
    """Stands in for any `__torch__.*` class (a scripted module) while unpickling: it keeps the
    attribute dict it is given and has no code."""

    def __setstate__(self, state) -> None:
        self.attributes = state if isinstance(state, dict) else {}


class _StorageType:
    """Stands in for torch.FloatStorage & co: only says which dtype the bytes hold."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, hooks=None, *_):
    """torch._utils._rebuild_tensor_v2, restricted to what a data.pkl needs: a strided view of a
    storage read by `persistent_load`, copied out (bounds are checked by as_strided)."""
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError("a tensor without a storage")
    if torch.Size(size).numel() > storage.numel():  # a stride-0 view would allocate at will
        raise pickle.UnpicklingError(f"a {tuple(size)} tensor on {storage.numel()} values")
    return storage.as_strided(tuple(size), tuple(stride), int(storage_offset)).clone()


def _build_intlist(values):
    """torch.jit._pickle.build_intlist (a padding list such as [0, 3])."""
    return [int(v) for v in values]


_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.jit._pickle", "build_intlist"): _build_intlist,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript archive's data.pkl: tensors (storages come from the zip's data/
    entries), plain containers and placeholder modules; any other global is refused."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, source: Path):
        super().__init__(file)
        self.archive, self.prefix, self.source = archive, prefix, source
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str):
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise GanforgeError(
            f"{self.source}: refused to load '{module}.{name}' from data.pkl "
            "(a weights archive holds only tensors and module attributes)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.60}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType):
            raise pickle.UnpicklingError("a storage of unknown type")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = self._read_storage(key, kind.dtype, int(numel))
        return self.storages[key]

    def _read_storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        entry = f"{self.prefix}data/{key}"
        nbytes = numel * torch.empty(0, dtype=dtype).element_size()
        if self.archive.getinfo(entry).file_size != nbytes:  # checked before reading anything
            raise pickle.UnpicklingError(f"{entry} does not hold {numel} {dtype} values")
        data = bytearray(self.archive.read(entry))
        return torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a TorchScript archive by dotted attribute name ("net.layers.conv.weight"),
    read without torch.jit and without running any code from the file.

    Raises GanforgeError naming the file for an unreadable archive or for any global in data.pkl
    other than tensor rebuilding, storages, OrderedDict and `__torch__` module classes.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise GanforgeError(f"{path}: not a TorchScript archive (no top-level data.pkl)")
            prefix = pickles[0].removesuffix("data.pkl")  # e.g. "out_jit_module/"
            with archive.open(pickles[0]) as handle:
                root = _ArchiveUnpickler(handle, archive, prefix, path).load()
        tensors: dict[str, torch.Tensor] = {}
        _collect_tensors(root, "", tensors, set())
    except GanforgeError:
        raise
    except Exception as exc:  # untrusted bytes can fail in any way; none of it is a crash
        raise GanforgeError(
            f"{path}: not a readable TorchScript archive ({type(exc).__name__}: {exc})"
        ) from None
    if not tensors:
        raise GanforgeError(f"{path}: the TorchScript archive holds no tensors")
    return tensors


def _collect_tensors(obj, prefix: str, out: dict, seen: set) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, _ScriptObject) and id(obj) not in seen:
        seen.add(id(obj))
        for key, value in getattr(obj, "attributes", {}).items():
            _collect_tensors(value, f"{prefix}{key}.", out, seen)

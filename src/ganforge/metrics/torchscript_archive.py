"""Reading the tensors of a TorchScript archive without running it (no torch.jit, no code).

A TorchScript .pt file is a zip: data.pkl (a pickle of the module tree) plus data/<key> files
of raw storage bytes. Unpickling data.pkl normally may run code; here a restricted unpickler
allows only tensor rebuilding, storage types, OrderedDict and int lists, and stands a
code-free placeholder in for every `__torch__.*` module class, so only tensors and module
attributes come out. Used to import the standard FID Inception weights (inception.py).

Nothing is trusted for its size either: a 1 MB zip can declare gigabytes. Every member's
declared uncompressed size is bounded before anything is read; data.pkl yields tensor
*recipes* (storage key, offset, shape, strides) whose shapes a caller's `check` sees as meta
tensors, and only then are the storages read, each exactly the bytes its tensors need.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge.errors import GanforgeError

# Bounds on what the zip declares (the FID Inception archive: 87 MB in all, its largest storage
# 6.2 MB, its data.pkl 28 kB), checked before any member is read.
MAX_MEMBER_BYTES = 256 * 2**20
MAX_PICKLE_BYTES = 16 * 2**20
MAX_TOTAL_BYTES = 1 * 2**30


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


@dataclass(frozen=True)
class _Storage:
    """A data/<key> member named by data.pkl, not read yet: `numel` values of `dtype`."""

    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRecipe:
    """A strided view of a storage, checked to lie inside it; read only after the shapes are."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def meta(self) -> torch.Tensor:
        """The tensor's shape and dtype without its values (no memory)."""
        return torch.empty(self.size, dtype=self.storage.dtype, device="meta")


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, hooks=None, *_):
    """torch._utils._rebuild_tensor_v2, restricted to what a data.pkl needs: a strided view of a
    storage named by `persistent_load`, as a recipe whose every element lies in the storage."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    size, stride = tuple(int(n) for n in size), tuple(int(n) for n in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or min(size + stride + (offset,), default=0) < 0:
        raise pickle.UnpicklingError(f"a tensor of size {size} with strides {stride}")
    numel = torch.Size(size).numel()
    if numel > storage.numel:  # a stride-0 view would allocate at will
        raise pickle.UnpicklingError(f"a {size} tensor on {storage.numel} values")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if numel and last >= storage.numel:
        raise pickle.UnpicklingError(f"a {size} tensor reaching past {storage.numel} values")
    return _TensorRecipe(storage, offset, size, stride)


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
        self.storages: dict[str, _Storage] = {}

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
            entry = f"{self.prefix}data/{key}"
            numel = int(numel)
            nbytes = numel * torch.empty(0, dtype=kind.dtype).element_size()
            if self.archive.getinfo(entry).file_size != nbytes:
                raise pickle.UnpicklingError(f"{entry} does not hold {numel} {kind.dtype} values")
            self.storages[key] = _Storage(key, kind.dtype, numel)
        return self.storages[key]

    def read(self, recipe: _TensorRecipe, cache: dict[str, torch.Tensor]) -> torch.Tensor:
        """The tensor of `recipe`, its storage read once (its size was bounded and matched)."""
        storage = recipe.storage
        if storage.key not in cache:
            data = bytearray(self.archive.read(f"{self.prefix}data/{storage.key}"))
            cache[storage.key] = (
                torch.frombuffer(data, dtype=storage.dtype)
                if data
                else torch.empty(0, dtype=storage.dtype)
            )
        values = cache[storage.key]
        return values.as_strided(recipe.size, recipe.stride, recipe.offset).clone()


def read_torchscript_tensors(
    path: str | Path, check: Callable[[dict[str, torch.Tensor]], object] | None = None
) -> dict[str, torch.Tensor]:
    """All tensors of a TorchScript archive by dotted attribute name ("net.layers.conv.weight"),
    read without torch.jit and without running any code from the file.

    `check`, when given, sees the tensors as meta tensors (names, shapes, dtypes; no values)
    before any storage is read, and raises to refuse them.

    Raises GanforgeError naming the file for an unreadable archive, for a member that declares
    more bytes than MAX_MEMBER_BYTES (MAX_PICKLE_BYTES for data.pkl, MAX_TOTAL_BYTES in all), or
    for any global in data.pkl other than tensor rebuilding, storages, OrderedDict and
    `__torch__` module classes.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise GanforgeError(f"{path}: not a TorchScript archive (no top-level data.pkl)")
            _check_declared_sizes(path, archive, pickles[0])
            prefix = pickles[0].removesuffix("data.pkl")  # e.g. "out_jit_module/"
            with archive.open(pickles[0]) as handle:
                unpickler = _ArchiveUnpickler(handle, archive, prefix, path)
                root = unpickler.load()
            recipes: dict[str, _TensorRecipe] = {}
            _collect_tensors(root, "", recipes, set())
            if check is not None:
                check({name: recipe.meta() for name, recipe in recipes.items()})
            storages: dict[str, torch.Tensor] = {}
            tensors = {name: unpickler.read(recipe, storages) for name, recipe in recipes.items()}
    except GanforgeError:
        raise
    except Exception as exc:  # untrusted bytes can fail in any way; none of it is a crash
        raise GanforgeError(
            f"{path}: not a readable TorchScript archive ({type(exc).__name__}: {exc})"
        ) from None
    if not tensors:
        raise GanforgeError(f"{path}: the TorchScript archive holds no tensors")
    return tensors


def _check_declared_sizes(path: Path, archive: zipfile.ZipFile, data_pkl: str) -> None:
    """Refuse an archive whose members declare more uncompressed bytes than weights need."""
    total = 0
    for info in archive.infolist():
        bound = MAX_PICKLE_BYTES if info.filename == data_pkl else MAX_MEMBER_BYTES
        if info.file_size > bound:
            raise GanforgeError(
                f"{path}: member '{info.filename}' declares {info.file_size:,} bytes "
                f"uncompressed, over the bound of {bound:,} (not a weights archive)"
            )
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise GanforgeError(
            f"{path}: the members declare {total:,} bytes uncompressed in all, over the bound "
            f"of {MAX_TOTAL_BYTES:,} (not a weights archive)"
        )


def _collect_tensors(obj, prefix: str, out: dict, seen: set) -> None:
    if isinstance(obj, _TensorRecipe):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, _ScriptObject) and id(obj) not in seen:
        seen.add(id(obj))
        for key, value in getattr(obj, "attributes", {}).items():
            _collect_tensors(value, f"{prefix}{key}.", out, seen)

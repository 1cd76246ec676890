"""The IDX file format of MNIST, Fashion-MNIST and KMNIST (gzipped or not).

Layout (LeCun's MNIST page): two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, then each dimension as a big-endian uint32, then the values, big-endian, row-major.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from ganforge.atomic import atomic_path
from ganforge.errors import GanforgeError

IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 1 << 30  # the largest MNIST-like file, 60,000 28x28 images, is 47 MB


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file; a `.gz` file (by its magic bytes) is decompressed.
    At most MAX_IDX_BYTES are read, so a small gzip "bomb" cannot fill the memory."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            compressed = handle.read(2) == GZIP_MAGIC
            handle.seek(0)
            stream = gzip.GzipFile(fileobj=handle) if compressed else handle
            raw = stream.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise GanforgeError(f"cannot read IDX file '{path}': {exc}") from None
    if len(raw) > MAX_IDX_BYTES:
        raise GanforgeError(
            f"'{path}' holds over {MAX_IDX_BYTES >> 30} GiB of IDX data: not an MNIST-like "
            "dataset file"
        )
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_TYPES:
        raise GanforgeError(f"'{name}' is not an IDX file (bad magic number)")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GanforgeError(f"'{name}': IDX header is cut short")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(raw) != expected:
        raise GanforgeError(
            f"'{name}': IDX shape {shape} needs {expected} bytes, the file has {len(raw)}"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file (gzipped when `path` ends in .gz): used to make small test
    files in the official format."""
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    code = codes[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)

"""Features of real datasets, cached on disk under a key of the data and the extractor.

Real images are the same at every evaluation of every run on a dataset, so their features are
computed once. The key hashes the image bytes (so any change of the data, resolution or channel
conversion gives a new entry) and the extractor's identity (weights and preprocessing). Files
are .npz read without pickle, and verified before use: each array's declared shape and dtype
(read from its header, before its values) must be what the extractor gives for these images,
the values finite and of a sane size, and their SHA-256 the one recorded. A file that fails is
recomputed, with a one-line note on stderr: a damaged cache never crashes an evaluation (NaN:
a LinAlgError; a huge declared array: a MemoryError) nor yields a wrong number (1e38 features:
an FID of 1e78).
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from ganforge.atomic import atomic_path
from ganforge.cache import cache_dir
from ganforge.metrics.extractor import FeatureExtractor, as_uint8_nchw
from ganforge.metrics.features import FeatureSet, extract_features


def data_fingerprint(images: torch.Tensor) -> str:
    """sha256 of a uint8 image tensor's shape and bytes."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_file(label: str, extractor: FeatureExtractor, fingerprint: str, root: Path) -> Path:
    key = hashlib.sha256(f"{fingerprint}|{extractor.identity()}".encode()).hexdigest()[:20]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")[-60:] or "data"
    return root / f"{slug}-{extractor.name}-{key}.npz"


# Far above what any extractor gives (Inception's pool features are < 100, logits < 1e3), far
# below what squares to an overflow: a value past it is damage, not a feature.
MAX_FEATURE_MAGNITUDE = 1e6
MAX_STRING_BYTES = 1 << 16  # the fingerprint, the extractor's identity, the checksum


class DamagedCache(ValueError):
    """A cache file that is not a usable entry for these images and this extractor."""


def features_checksum(features: np.ndarray, logits: np.ndarray | None) -> str:
    """sha256 of the float32 features and logits, as written."""
    digest = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes())
    if logits is not None:
        digest.update(np.ascontiguousarray(logits, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _expected_arrays(extractor: FeatureExtractor, count: int) -> dict[str, tuple]:
    """Member name -> (dtype kind, shape; None: any length) that an entry must hold."""
    expected = {
        "data": ("U", ()),
        "extractor": ("U", ()),
        "checksum": ("U", ()),
        "features": ("f", (count, extractor.feature_dim or None)),
    }
    if extractor.num_classes:
        expected["logits"] = ("f", (count, extractor.num_classes))
    return expected


def _check_headers(path: Path, expected: dict[str, tuple]) -> None:
    """Each member's declared dtype and shape, read from its .npy header before any value."""
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        if set(members) != set(expected):
            raise DamagedCache(f"holds {sorted(members)}, not {sorted(expected)}")
        for key, (kind, shape) in expected.items():
            with archive.open(members[key]) as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                found_shape, _fortran, dtype = read_header(handle)
            fits = len(found_shape) == len(shape) and all(
                want is None or got == want for got, want in zip(found_shape, shape)
            )
            too_big = dtype.itemsize > (MAX_STRING_BYTES if kind == "U" else 8)
            if dtype.kind != kind or too_big or not fits:
                raise DamagedCache(f"'{key}' is {dtype} {found_shape}, expected {kind} {shape}")


def _check_values(name: str, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise DamagedCache(f"'{name}' holds NaN or infinite values")
    largest = float(np.abs(values).max(initial=0.0))
    if largest > MAX_FEATURE_MAGNITUDE:
        raise DamagedCache(f"'{name}' holds {largest:.3g}, beyond {MAX_FEATURE_MAGNITUDE:g}")


def _read(path: Path, fingerprint: str, extractor: FeatureExtractor, count: int) -> FeatureSet:
    """The verified entry at `path`; raises DamagedCache saying why it cannot be used."""
    identity = extractor.identity()
    try:
        _check_headers(path, _expected_arrays(extractor, count))
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            if str(data["data"]) != fingerprint or str(data["extractor"]) != identity:
                raise DamagedCache("it was written for other images or another extractor")
            features = data["features"].astype(np.float32)
            logits = data["logits"].astype(np.float32) if "logits" in data.files else None
            checksum = str(data["checksum"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, MemoryError) as exc:
        if isinstance(exc, DamagedCache):
            raise
        raise DamagedCache(f"unreadable ({type(exc).__name__}: {exc})") from None
    _check_values("features", features)
    if logits is not None:
        _check_values("logits", logits)
    if features_checksum(features, logits) != checksum:
        raise DamagedCache("its values do not match its checksum")
    return FeatureSet(features, logits, identity)


def real_features(
    images: torch.Tensor,
    extractor: FeatureExtractor,
    *,
    label: str = "data",
    use_cache: bool = True,
    root: Path | None = None,
    batch_size: int | None = None,
    device=None,
    progress: bool = False,
) -> FeatureSet:
    """Features of uint8 `images` under `extractor`, from the cache when it holds them."""
    images = as_uint8_nchw(images)
    fingerprint = data_fingerprint(images)
    path = cache_file(label, extractor, fingerprint, root or cache_dir("stats"))
    if use_cache and path.is_file():
        try:
            return _read(path, fingerprint, extractor, len(images))
        except DamagedCache as exc:
            note = f"ganforge: note: the cached features '{path}' are not usable ({exc})"
            print(f"{note}: recomputing them".replace("\n", " ")[:400], file=sys.stderr)
    found = extract_features(
        extractor, images, batch_size=batch_size, device=device, progress=progress
    )
    if use_cache:
        arrays = {"features": found.features, "data": fingerprint, "extractor": found.extractor}
        arrays["checksum"] = features_checksum(found.features, found.logits)
        if found.logits is not None:
            arrays["logits"] = found.logits
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
        except OSError:
            pass  # an unwritable cache only costs time
    return found

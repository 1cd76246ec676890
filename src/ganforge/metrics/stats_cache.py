"""Features of real datasets, cached on disk under a key of the data and the extractor.

Real images are the same at every evaluation of every run on a dataset, so their features are
computed once. The key hashes the image bytes (so any change of the data, resolution or channel
conversion gives a new entry) and the extractor's identity (weights and preprocessing). Files
are .npz read without pickle; a damaged file is recomputed.
"""

from __future__ import annotations

import hashlib
import re
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


def _read(path: Path, fingerprint: str, identity: str) -> FeatureSet | None:
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            if str(data["data"]) != fingerprint or str(data["extractor"]) != identity:
                return None
            logits = data["logits"] if "logits" in data.files else None
            return FeatureSet(data["features"].astype(np.float32), logits, identity)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


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
        cached = _read(path, fingerprint, extractor.identity())
        if cached is not None:
            return cached
    found = extract_features(
        extractor, images, batch_size=batch_size, device=device, progress=progress
    )
    if use_cache:
        arrays = {"features": found.features, "data": fingerprint, "extractor": found.extractor}
        if found.logits is not None:
            arrays["logits"] = found.logits
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
        except OSError:
            pass  # an unwritable cache only costs time
    return found

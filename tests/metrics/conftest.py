"""Fixtures shared by the metrics tests: real digits and their classifier features."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.data import load_dataset
from ganforge.metrics import load_extractor, real_features


@pytest.fixture(scope="module")
def digits_setup():
    """mnist-mini, the shipped digit extractor, its features of all 5,000 digits, and a random
    split of their indices into two halves. The session's private cache means the first module
    extracts and the others read the file."""
    data = load_dataset("mnist-mini")
    extractor = load_extractor("mnist")
    features = real_features(data.images, extractor, label="mnist-mini").features
    perm = np.random.default_rng(0).permutation(len(features))
    return data, extractor, features, perm[: len(perm) // 2], perm[len(perm) // 2 :]

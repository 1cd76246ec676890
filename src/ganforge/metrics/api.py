"""The metrics on images or features, in one call each (as torch-fidelity's entry points).

Every function takes `real` / `fake` as any of:
- uint8 images, (N, C, H, W) or (N, H, W, C), numpy or torch, or an iterable of such batches
  (streamed through the extractor);
- precomputed features: a float (N, D) array/tensor, or a FeatureSet from `extract_features`.
`features` names the extractor for images ("inception", "mnist", a file path, or an
extractor object); by default grayscale images use the shipped digit classifier and colour
images Inception.
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import class_scores, frechet, kernel_distance, prdc
from ganforge.metrics.extractor import FeatureExtractor, as_uint8_nchw
from ganforge.metrics.features import FeatureSet, extract_features
from ganforge.metrics.registry import default_extractor, load_extractor


def _is_feature_array(x) -> bool:
    if isinstance(x, torch.Tensor):
        return x.ndim == 2 and x.is_floating_point()
    if isinstance(x, np.ndarray):
        return x.ndim == 2 and np.issubdtype(x.dtype, np.floating)
    return False


def _extractor_for(images, features, device) -> tuple[FeatureExtractor, object]:
    if features is not None:
        return load_extractor(features, device=device or "cpu"), images
    if isinstance(images, (np.ndarray, torch.Tensor)):
        channels = as_uint8_nchw(images[:1]).shape[1]
    else:  # peek at the first batch of a stream, then put it back
        iterator = iter(images)
        try:
            first = as_uint8_nchw(next(iterator))
        except StopIteration:  # else a bare StopIteration escapes the metric call
            raise GanforgeError("images: the set is empty") from None
        channels = first.shape[1]
        images = _chain(first, iterator)
    return load_extractor(default_extractor(channels), device=device or "cpu"), images


def _chain(first, rest):
    yield first
    yield from rest


def to_feature_set(x, features=None, *, batch_size: int | None = None, device=None) -> FeatureSet:
    """A FeatureSet from images, features or a FeatureSet (see the module docstring)."""
    if isinstance(x, FeatureSet):
        return x
    if _is_feature_array(x):
        array = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        array = np.asarray(array)
        if array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float64)
        return FeatureSet(array, None, "given")
    extractor, images = _extractor_for(x, features, device)
    return extract_features(extractor, images, batch_size=batch_size, device=device)


def _pair(real, fake, features, batch_size, device) -> tuple[FeatureSet, FeatureSet]:
    # one extractor for both sides: load it once
    if features is None and not _is_feature_array(real) and not isinstance(real, FeatureSet):
        extractor, real = _extractor_for(real, None, device)
        features = extractor
    a = to_feature_set(real, features, batch_size=batch_size, device=device)
    b = to_feature_set(fake, features, batch_size=batch_size, device=device)
    if a.extractor != b.extractor and "given" not in (a.extractor, b.extractor):
        raise GanforgeError("real and fake features come from different extractors")
    return a, b


def _logits(x, features, batch_size, device, metric: str) -> np.ndarray:
    if _is_feature_array(x):  # precomputed logits
        return np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
    found = to_feature_set(x, features, batch_size=batch_size, device=device)
    if found.logits is None:
        raise GanforgeError(
            f"{metric} needs class predictions, and this extractor has no classifier head "
            "(use a domain classifier such as 'mnist', or one from train-extractor)"
        )
    return found.logits


def fid(real, fake, features=None, *, batch_size: int | None = None, device=None) -> float:
    """Fréchet distance between the two sets' features (biased upwards at small N)."""
    a, b = _pair(real, fake, features, batch_size, device)
    return frechet.frechet_distance(a.features, b.features)


def kid(
    real,
    fake,
    features=None,
    *,
    subsets=100,
    subset_size=1000,
    seed=0,
    batch_size=None,
    device=None,
):
    """Unbiased KID, mean and std over random subsets (a KIDResult)."""
    a, b = _pair(real, fake, features, batch_size, device)
    return kernel_distance.kid_of_features(a.features, b.features, subsets, subset_size, seed)


def precision_recall(real, fake, features=None, *, k: int = 3, batch_size=None, device=None):
    """Improved precision and recall (Kynkäänniemi et al. 2019), k-NN balls with k=3."""
    a, b = _pair(real, fake, features, batch_size, device)
    return prdc.precision_recall_of_features(a.features, b.features, k)


def density_coverage(real, fake, features=None, *, k: int = 5, batch_size=None, device=None):
    """Density and coverage (Naeem et al. 2020), k-NN balls around real points with k=5."""
    a, b = _pair(real, fake, features, batch_size, device)
    return prdc.density_coverage_of_features(a.features, b.features, k)


def inception_score(fake, features=None, *, splits: int = 10, batch_size=None, device=None):
    """IS from a classifier's predictions on `fake` (images, or logits (N, C))."""
    logits = _logits(fake, features, batch_size, device, "inception score")
    return class_scores.inception_score_of_logits(logits, splits)


def mode_coverage(fake, features=None, *, batch_size=None, device=None):
    """Classes found among `fake` and the class histogram's KL to uniform (a ModeCoverage)."""
    logits = _logits(fake, features, batch_size, device, "mode coverage")
    return class_scores.mode_coverage_of_logits(logits)

"""Quantitative evaluation of generators, usable on its own: FID, KID, IS, precision/recall,
density/coverage and mode coverage, on images or features, with Inception-v3 or ganforge's
offline domain classifiers as feature extractors. Imports nothing from ganforge.training."""

from ganforge.metrics.api import (
    density_coverage,
    fid,
    inception_score,
    kid,
    mode_coverage,
    precision_recall,
    to_feature_set,
)
from ganforge.metrics.extractor import FeatureExtractor
from ganforge.metrics.features import FeatureSet, extract_features
from ganforge.metrics.frechet import GaussianStats, frechet_distance, gaussian_stats, sqrtm_psd
from ganforge.metrics.registry import default_extractor, list_extractors, load_extractor
from ganforge.metrics.stats_cache import real_features

__all__ = [
    "FeatureExtractor",
    "FeatureSet",
    "GaussianStats",
    "default_extractor",
    "density_coverage",
    "extract_features",
    "fid",
    "frechet_distance",
    "gaussian_stats",
    "inception_score",
    "kid",
    "list_extractors",
    "load_extractor",
    "mode_coverage",
    "precision_recall",
    "real_features",
    "sqrtm_psd",
    "to_feature_set",
]

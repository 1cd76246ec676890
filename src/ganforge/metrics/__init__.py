"""Quantitative evaluation of generators, usable on its own: FID, KID, IS, precision/recall,
density/coverage and mode coverage, on images or features, with Inception-v3 or ganforge's
offline domain classifiers as feature extractors. Imports nothing from ganforge.training.

Every metric is declared once in the catalogue (catalog.py; the built-in ones in builtin.py):
its direction, what it needs, its `ganforge eval --metrics` group and how it is computed."""

from ganforge.metrics import builtin  # noqa: F401  (declares the built-in metrics)
from ganforge.metrics.api import (
    density_coverage,
    fid,
    inception_score,
    kid,
    mode_coverage,
    precision_recall,
    to_feature_set,
)
from ganforge.metrics.catalog import (
    HIGHER,
    LOWER,
    Metric,
    MetricInputs,
    eval_metric_names,
    get_group,
    get_metric,
    list_groups,
    list_metrics,
    register_group,
)
from ganforge.metrics.extractor import FeatureExtractor
from ganforge.metrics.features import FeatureSet, extract_features
from ganforge.metrics.frechet import GaussianStats, frechet_distance, gaussian_stats, sqrtm_psd
from ganforge.metrics.registry import default_extractor, list_extractors, load_extractor
from ganforge.metrics.stats_cache import real_features

__all__ = [
    "HIGHER",
    "LOWER",
    "FeatureExtractor",
    "FeatureSet",
    "GaussianStats",
    "Metric",
    "MetricInputs",
    "default_extractor",
    "density_coverage",
    "eval_metric_names",
    "extract_features",
    "fid",
    "frechet_distance",
    "gaussian_stats",
    "get_group",
    "get_metric",
    "inception_score",
    "kid",
    "list_extractors",
    "list_groups",
    "list_metrics",
    "load_extractor",
    "mode_coverage",
    "precision_recall",
    "real_features",
    "register_group",
    "sqrtm_psd",
    "to_feature_set",
]

"""The one-call metrics API: every input form (NCHW/NHWC numpy and torch, streams of batches,
precomputed features, FeatureSets) gives the same numbers, and bad input is a GanforgeError."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge import metrics
from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import FeatureExtractor, FeatureSet, extract_features, load_extractor
from ganforge.metrics.class_scores import inception_score_of_logits, mode_coverage_of_logits
from ganforge.metrics.frechet import frechet_distance
from ganforge.metrics.kernel_distance import kid_of_features
from ganforge.metrics.prdc import density_coverage_of_features, precision_recall_of_features
from ganforge.metrics.registry import PACKAGED, WEIGHTS_DIR

N = 200


@pytest.fixture(scope="module")
def sets():
    """Real digits, 'fake' digits (other real ones with noise), and their reference features."""
    data = load_dataset("mnist-mini")
    perm = np.random.default_rng(0).permutation(len(data.images))
    real = data.images[perm[:N]]
    g = torch.Generator().manual_seed(0)
    fake = data.images[perm[N : 2 * N]].float() + 40 * torch.randn(N, 1, 28, 28, generator=g)
    fake = fake.round().clamp(0, 255).to(torch.uint8)
    extractor = load_extractor("mnist")
    return real, fake, extract_features(extractor, real), extract_features(extractor, fake)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).contiguous()


# each form: images (uint8 NCHW tensor) + their FeatureSet -> what the API is handed
FORMS = {
    "numpy-nchw": lambda x, fs: x.numpy(),
    "numpy-nhwc": lambda x, fs: nhwc(x).numpy(),
    "torch-nchw": lambda x, fs: x,
    "torch-nhwc": lambda x, fs: nhwc(x),
    "generator-of-batches": lambda x, fs: (b for b in torch.split(x, 64)),
    "list-of-nhwc-numpy-batches": lambda x, fs: [nhwc(b).numpy() for b in torch.split(x, 70)],
    "numpy-features": lambda x, fs: fs.features,
    "torch-features": lambda x, fs: torch.from_numpy(fs.features),
    "feature-set": lambda x, fs: fs,
}


@pytest.fixture(scope="module")
def reference(sets):
    _, _, real_fs, fake_fs = sets
    return frechet_distance(real_fs.features, fake_fs.features)


@pytest.mark.parametrize("form", FORMS)
def test_every_input_form_gives_the_same_fid(sets, reference, form):
    real, fake, real_fs, fake_fs = sets
    value = metrics.fid(FORMS[form](real, real_fs), FORMS[form](fake, fake_fs))
    assert value == pytest.approx(reference, rel=1e-5)


def test_reference_fid_is_not_trivial(sets, reference):
    real, _, real_fs, _ = sets
    assert reference > 5.0  # the noisy set is measurably different ...
    assert metrics.fid(real, real_fs) == pytest.approx(0.0, abs=1e-6)  # ... the same set is not


def test_mixed_forms_on_the_two_sides(sets, reference):
    real, fake, real_fs, fake_fs = sets
    assert metrics.fid(real_fs, nhwc(fake).numpy()) == pytest.approx(reference, rel=1e-5)
    assert metrics.fid(real.numpy(), fake_fs.features) == pytest.approx(reference, rel=1e-5)
    stream = (b for b in torch.split(nhwc(real), 50))
    assert metrics.fid(stream, fake_fs) == pytest.approx(reference, rel=1e-5)


@pytest.mark.parametrize(
    "features",
    ["mnist", str(WEIGHTS_DIR / PACKAGED["mnist"][0]), "extractor-object"],
)
def test_naming_the_extractor(sets, reference, features):
    real, fake, _, _ = sets
    if features == "extractor-object":
        features = load_extractor("mnist")
    assert metrics.fid(real, fake, features) == pytest.approx(reference, rel=1e-5)


def test_batch_size_does_not_change_the_result(sets, reference):
    real, fake, _, _ = sets
    assert metrics.fid(real, fake, batch_size=7) == pytest.approx(reference, rel=1e-5)


def test_every_metric_on_images_matches_the_metric_on_features(sets):
    real, fake, real_fs, fake_fs = sets
    real_np, fake_np = nhwc(real).numpy(), nhwc(fake).numpy()

    kid = metrics.kid(real_np, fake_np, subsets=10, subset_size=100, seed=1)
    expected_kid = kid_of_features(real_fs.features, fake_fs.features, 10, 100, 1)
    assert kid.mean == pytest.approx(expected_kid.mean, rel=1e-5)
    assert kid.std == pytest.approx(expected_kid.std, rel=1e-4)
    assert kid.mean > 0

    pr = metrics.precision_recall(real_np, fake_np, k=4)
    expected_pr = precision_recall_of_features(real_fs.features, fake_fs.features, 4)
    assert pr.precision == pytest.approx(expected_pr.precision, rel=1e-6)
    assert pr.recall == pytest.approx(expected_pr.recall, rel=1e-6)
    assert pr.k == 4 and 0 < pr.recall < 1

    dc = metrics.density_coverage(real, fake, k=2)
    expected_dc = density_coverage_of_features(real_fs.features, fake_fs.features, 2)
    assert dc.density == pytest.approx(expected_dc.density, rel=1e-6)
    assert dc.coverage == pytest.approx(expected_dc.coverage, rel=1e-6)
    assert dc.k == 2

    score = metrics.inception_score(fake_np, splits=4)
    expected_is = inception_score_of_logits(fake_fs.logits, 4)
    assert score.mean == pytest.approx(expected_is.mean, rel=1e-5)
    assert score.splits == 4

    modes = metrics.mode_coverage(b for b in torch.split(real, 64))
    expected_modes = mode_coverage_of_logits(real_fs.logits)
    assert modes.histogram == pytest.approx(expected_modes.histogram)
    assert modes.classes_found == expected_modes.classes_found == 10


def test_class_scores_accept_feature_sets_and_precomputed_logits(sets):
    _, fake, _, fake_fs = sets
    expected = inception_score_of_logits(fake_fs.logits, 5)
    assert metrics.inception_score(fake_fs, splits=5) == expected
    assert metrics.inception_score(fake_fs.logits, splits=5) == expected
    assert metrics.inception_score(torch.from_numpy(fake_fs.logits), splits=5) == expected
    assert metrics.mode_coverage(fake_fs.logits) == mode_coverage_of_logits(fake_fs.logits)


def test_to_feature_set(sets):
    real, _, real_fs, _ = sets
    given = metrics.to_feature_set(real_fs.features.astype(np.float64))
    assert given.extractor == "given" and given.logits is None
    assert given.features.dtype == np.float64  # precomputed features keep their precision
    assert metrics.to_feature_set(real_fs) is real_fs
    extracted = metrics.to_feature_set(nhwc(real))
    assert extracted.extractor == load_extractor("mnist").identity() == real_fs.extractor
    np.testing.assert_allclose(extracted.features, real_fs.features, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(extracted.logits, real_fs.logits, rtol=1e-5, atol=1e-5)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        lambda x: x.float().numpy(),  # float images
        lambda x: x.float() / 255,  # float tensor in [0, 1]
        lambda x: x.numpy().astype(np.int64),
        lambda x: (b.float() for b in torch.split(x, 64)),  # a stream of float batches
    ],
)
def test_non_uint8_images_are_an_error(sets, bad):
    real, fake, _, _ = sets
    with pytest.raises(GanforgeError, match="uint8"):
        metrics.fid(real, bad(fake))
    with pytest.raises(GanforgeError, match="uint8"):
        metrics.fid(bad(real), fake)
    with pytest.raises(GanforgeError, match="uint8"):
        metrics.mode_coverage(bad(fake))


def test_bad_shapes_are_an_error(sets):
    real, _, _, _ = sets
    with pytest.raises(GanforgeError, match="channels"):
        metrics.fid(real, torch.zeros(8, 2, 28, 28, dtype=torch.uint8))
    with pytest.raises(GanforgeError, match="batch"):
        metrics.fid(real, torch.zeros(28, 28, dtype=torch.uint8))
    with pytest.raises(GanforgeError, match="empty"):
        metrics.fid(real, torch.zeros(0, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(GanforgeError, match="empty"):
        metrics.fid(iter([]), real)
    with pytest.raises(GanforgeError, match="empty"):
        metrics.mode_coverage(iter([]))


def test_class_scores_without_logits_are_an_error(sets):
    real, _, real_fs, _ = sets
    no_logits = FeatureSet(real_fs.features, None, real_fs.extractor)
    with pytest.raises(GanforgeError, match="class predictions"):
        metrics.inception_score(no_logits)
    with pytest.raises(GanforgeError, match="class predictions"):
        metrics.mode_coverage(no_logits)

    class NoHead(FeatureExtractor):
        name = "nohead"
        feature_dim = 4

        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(28 * 28, 4)

        def prepare(self, images):
            return images.float().flatten(1) / 255

        def embed_prepared(self, x):
            return self.proj(x)

    headless = NoHead()
    with pytest.raises(GanforgeError, match="class predictions"):
        metrics.mode_coverage(real, headless)
    # the same extractor is fine for the feature-space metrics
    assert metrics.fid(real[:100], real[100:], headless) > 0


def test_features_from_different_extractors_are_an_error(sets):
    real, fake, real_fs, fake_fs = sets
    other = FeatureSet(fake_fs.features, fake_fs.logits, "some-other-extractor")
    with pytest.raises(GanforgeError, match="different extractors"):
        metrics.fid(real_fs, other)
    with pytest.raises(GanforgeError, match="dimensions differ"):
        metrics.fid(real_fs.features, fake_fs.features[:, :10])

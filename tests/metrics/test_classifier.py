"""Domain-classifier extractors: the shipped digit classifier's accuracy, training one and
checking its recorded accuracy, bad files, and the input preparation (channels, sizes)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import extract_features, list_extractors, load_extractor, real_features
from ganforge.metrics.classifier import (
    FORMAT,
    ClassifierSpec,
    DomainClassifier,
    load_classifier,
    read_spec,
    save_classifier,
)
from ganforge.metrics.registry import PACKAGED, WEIGHTS_DIR, default_extractor
from ganforge.metrics.train_extractor import held_out_accuracy, stratified_split, train_extractor

SHIPPED = WEIGHTS_DIR / PACKAGED["mnist"][0]


@pytest.fixture(scope="module")
def mnist_mini():
    return load_dataset("mnist-mini")


@pytest.fixture(scope="module")
def mnist():
    return load_extractor("mnist")


# -- the shipped extractor ---------------------------------------------------------------------


def test_shipped_extractor_spec(mnist):
    spec = read_spec(SHIPPED)
    assert spec.test_accuracy >= 0.95
    assert spec.test_size >= 500
    assert (spec.channels, spec.resolution, spec.num_classes) == (1, 28, 10)
    assert spec.class_names == tuple(str(d) for d in range(10))
    assert mnist.spec == spec
    assert (mnist.feature_dim, mnist.num_classes, mnist.name) == (spec.feature_dim, 10, "mnist")
    assert "mnist" in list_extractors() and "inception" in list_extractors()
    assert not mnist.training
    assert not any(p.requires_grad for p in mnist.parameters())


def test_shipped_extractor_classifies_mnist_mini(mnist, mnist_mini):
    logits = real_features(mnist_mini.images, mnist, label="mnist-mini").logits
    accuracy = (logits.argmax(1) == mnist_mini.labels.numpy()).mean()
    assert accuracy >= 0.95


def test_extractor_outputs_are_deterministic_and_batch_independent(mnist, mnist_mini):
    images = mnist_mini.images[::250]  # 20 images
    features, logits = mnist(images)
    assert features.shape == (20, mnist.feature_dim) and logits.shape == (20, 10)
    again, _ = mnist(images)
    torch.testing.assert_close(again, features, rtol=0, atol=0)  # no dropout in eval mode
    alone, alone_logits = mnist(images[7:8])
    torch.testing.assert_close(alone[0], features[7], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone_logits[0], logits[7], rtol=1e-5, atol=1e-5)


def test_identity_is_stable_and_tracks_the_weights(mnist):
    assert load_extractor("mnist").identity() == mnist.identity()
    assert load_extractor(str(SHIPPED)).identity() == mnist.identity()
    changed = load_extractor("mnist")
    with torch.no_grad():
        changed.features[0].weight[0, 0, 0, 0] += 0.5
    assert changed.identity() != mnist.identity()


def test_loading_an_extractor_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_extractor("mnist")
    torch.testing.assert_close(torch.rand(3), expected)


def test_unknown_extractor_names(tmp_path):
    with pytest.raises(GanforgeError, match="unknown extractor"):
        load_extractor("no-such-extractor")
    with pytest.raises(GanforgeError, match="no file"):
        load_extractor(tmp_path / "missing.safetensors")


# -- training one ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("extractor") / "digits.safetensors"
    lines = []
    path, spec = train_extractor("digits", out, epochs=1, heldout_per_class=10, log=lines.append)
    return path, spec, lines


def test_train_extractor_writes_a_loadable_file(trained):
    path, spec, lines = trained
    assert path.is_file()
    loaded = load_extractor(path)
    assert isinstance(loaded, DomainClassifier)
    assert read_spec(path) == spec == loaded.spec
    assert (spec.name, spec.trained_on, spec.num_classes, spec.test_size) == (
        "digits",
        "digits",
        10,
        100,
    )
    assert spec.test_accuracy > 0.5
    assert any("held-out accuracy" in line for line in lines)
    # weights ship as float16 and load as float32
    assert {t.dtype for t in load_file(str(path)).values()} == {torch.float16}
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}


def test_recorded_accuracy_is_what_the_file_scores_on_the_held_out_split(trained, digits):
    path, spec, _ = trained
    _, held = stratified_split(digits.labels.numpy(), 10, seed=0)
    loaded = load_extractor(path)
    logits = extract_features(loaded, digits.images[held]).logits
    measured = float((logits.argmax(1) == digits.labels.numpy()[held]).mean())
    assert spec.test_accuracy == pytest.approx(measured, abs=1e-12)
    assert held_out_accuracy(loaded, digits.images[held], digits.labels[held]) == measured


def test_trained_extractor_works_in_the_metrics(trained, digits):
    from ganforge import metrics

    path, _, _ = trained
    real, other = digits.images[::4], digits.images[1::4]
    found = metrics.mode_coverage(real, path)
    assert found.classes_found == 10
    assert metrics.fid(real, other, str(path)) >= 0.0
    mnist_feats = metrics.to_feature_set(real[:50], "mnist")
    digits_feats = metrics.to_feature_set(real[:50], str(path))
    assert mnist_feats.extractor != digits_feats.extractor
    with pytest.raises(GanforgeError, match="different extractors"):
        metrics.fid(mnist_feats, digits_feats)


def test_stratified_split():
    labels = np.repeat(np.arange(4), [5, 7, 6, 9])
    train, held = stratified_split(labels, 3, seed=1)
    assert np.bincount(labels[held]).tolist() == [3, 3, 3, 3]
    assert np.intersect1d(train, held).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(len(labels)))
    again = stratified_split(labels, 3, seed=1)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(stratified_split(labels, 3, seed=2)[1], held)


def test_train_extractor_rejects_unlabelled_data(tmp_path, monkeypatch, digits):
    import ganforge.metrics.train_extractor as module

    unlabelled = dataclasses.replace(digits, labels=torch.full_like(digits.labels, -1))
    monkeypatch.setattr(module, "load_dataset", lambda *args, **kwargs: unlabelled)
    with pytest.raises(GanforgeError, match="labelled"):
        train_extractor("digits", tmp_path / "x.safetensors", epochs=1)
    assert not (tmp_path / "x.safetensors").exists()


# -- bad files ---------------------------------------------------------------------------------


def small_classifier(**overrides) -> DomainClassifier:
    spec = ClassifierSpec(
        name="tiny", channels=1, resolution=8, num_classes=3, widths=(8,), feature_dim=16
    )
    return DomainClassifier(ClassifierSpec(**{**spec.__dict__, **overrides}))


def write_with_metadata(path, tensors, metadata):
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_save_and_load_round_trip(tmp_path):
    model = small_classifier(class_names=("a", "b", "c"), test_accuracy=0.75, test_size=12)
    save_classifier(model, tmp_path / "tiny.safetensors")
    loaded = load_classifier(tmp_path / "tiny.safetensors")
    assert loaded.spec == model.spec
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    f_model, l_model = model.eval()(images)
    f_loaded, l_loaded = loaded(images)
    torch.testing.assert_close(f_loaded, f_model, rtol=1e-2, atol=1e-2)  # float16 rounding
    torch.testing.assert_close(l_loaded, l_model, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (None, "not a ganforge extractor"),
        ({"format": "something-else/1"}, "not a ganforge extractor"),
        ({"format": FORMAT}, "bad extractor metadata"),  # no spec
        ({"format": FORMAT, "spec": "{not json"}, "bad extractor metadata"),
        ({"format": FORMAT, "spec": "[1, 2]"}, "bad extractor metadata"),
        ({"format": FORMAT, "spec": json.dumps({"name": "x"})}, "bad extractor metadata"),
    ],
)
def test_wrong_metadata_is_an_error(tmp_path, metadata, message):
    tensors = {k: v.contiguous() for k, v in small_classifier().state_dict().items()}
    path = write_with_metadata(tmp_path / "bad.safetensors", tensors, metadata)
    with pytest.raises(GanforgeError, match=message):
        load_classifier(path)
    with pytest.raises(GanforgeError, match=message):
        load_extractor(path)


@pytest.mark.parametrize(
    "spec_change",
    [
        {"channels": 2},  # not 1 or 3
        {"resolution": 9},  # not divisible by 2 ** len(widths)
        {"widths": [16]},  # valid, but not the stored weights' shapes
        {"num_classes": 5},
        {"widths": [4]},  # GroupNorm(8, 4): no network can be built
        {"unexpected_field": 1},
    ],
)
def test_metadata_that_does_not_fit_is_an_error(tmp_path, spec_change):
    model = small_classifier()
    spec = {**json.loads(model.spec.to_json()), **spec_change}
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = write_with_metadata(
        tmp_path / "bad.safetensors", tensors, {"format": FORMAT, "spec": json.dumps(spec)}
    )
    with pytest.raises(GanforgeError, match="bad.safetensors"):
        load_classifier(path)


def test_missing_or_extra_weights_are_an_error(tmp_path):
    model = small_classifier()
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "spec": model.spec.to_json()}
    missing = dict(tensors)
    missing.pop("head.weight")
    with pytest.raises(GanforgeError, match="do not fit"):
        load_classifier(write_with_metadata(tmp_path / "a.safetensors", missing, metadata))
    extra = {**tensors, "surprise": torch.zeros(2)}
    with pytest.raises(GanforgeError, match="do not fit"):
        load_classifier(write_with_metadata(tmp_path / "b.safetensors", extra, metadata))


@pytest.mark.parametrize("keep", [0, 7, 100, -100])
def test_truncated_file_is_an_error(tmp_path, keep):
    good = tmp_path / "good.safetensors"
    save_classifier(small_classifier(), good)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes()[:keep])
    with pytest.raises(GanforgeError, match="bad.safetensors"):
        load_classifier(bad)
    with pytest.raises(GanforgeError, match="bad.safetensors"):
        load_extractor(bad)


def test_garbage_or_a_folder_is_an_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(GanforgeError, match="not a readable extractor file"):
        load_classifier(bad)
    with pytest.raises(GanforgeError):
        load_classifier(tmp_path)


# -- prepare -----------------------------------------------------------------------------------


def test_prepare_maps_uint8_to_the_unit_range(mnist):
    images = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    images[0, 0, 0, :3] = torch.tensor([0, 255, 51], dtype=torch.uint8)
    x = mnist.prepare(images)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert x[0, 0, 0, :3].tolist() == pytest.approx([-1.0, 1.0, -0.6])


def test_prepare_converts_colour_to_luma(mnist, mnist_mini):
    gray = mnist_mini.images[:16]
    rgb = gray.expand(-1, 3, -1, -1).contiguous()
    torch.testing.assert_close(mnist.prepare(rgb), mnist.prepare(gray), rtol=0, atol=1e-5)
    # ITU-R 601 weights: pure red, green, blue images
    for channel, weight in enumerate([0.299, 0.587, 0.114]):
        colour = torch.zeros(1, 3, 28, 28, dtype=torch.uint8)
        colour[:, channel] = 255
        assert mnist.prepare(colour).mean().item() == pytest.approx(weight * 2 - 1, abs=1e-5)
    # and the features of RGB copies are the gray features; NHWC RGB works through the API
    features = extract_features(mnist, gray).features
    from_rgb = extract_features(mnist, rgb.permute(0, 2, 3, 1).numpy()).features
    np.testing.assert_allclose(from_rgb, features, rtol=1e-4, atol=1e-4)


def test_prepare_expands_gray_for_a_colour_extractor():
    model = small_classifier(channels=3).eval()
    gray = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    x = model.prepare(gray)
    assert x.shape == (2, 3, 8, 8)
    torch.testing.assert_close(x[:, 0], x[:, 2])
    features, _ = model(gray)
    torch.testing.assert_close(features, model(gray.expand(-1, 3, -1, -1))[0])


@pytest.mark.parametrize("side", [14, 56, 32])
def test_prepare_resizes_other_resolutions(mnist, mnist_mini, side):
    images = mnist_mini.images[::25]  # 200 images
    resized = F.interpolate(images.float(), size=(side, side), mode="bilinear", antialias=True)
    resized = resized.round().clamp(0, 255).to(torch.uint8)
    x = mnist.prepare(resized)
    assert x.shape == (200, 1, 28, 28)
    assert x.min() >= -1.0 - 1e-5 and x.max() <= 1.0 + 1e-5
    logits = extract_features(mnist, resized).logits
    agreement = (logits.argmax(1) == mnist_mini.labels[::25].numpy()).mean()
    assert agreement > (0.6 if side == 14 else 0.9)


def test_prepare_keeps_the_native_resolution_untouched(mnist, mnist_mini):
    images = mnist_mini.images[:4]
    expected = images.float() / 255 * 2 - 1
    torch.testing.assert_close(mnist.prepare(images), expected, rtol=0, atol=1e-6)


def test_shrinking_is_antialiased(mnist):
    # 1-pixel stripes at 84x84 are far beyond what 28x28 can show: a plain bilinear resize
    # samples every third column and keeps them at full contrast, an antialiased one averages
    # them to an even gray
    stripes = torch.zeros(1, 1, 84, 84, dtype=torch.uint8)
    stripes[..., ::2] = 255
    x = mnist.prepare(stripes)[0, 0, :, 2:-2]  # interior columns
    assert x.mean().item() == pytest.approx(0.0, abs=0.1)
    assert x.std().item() < 0.15


def test_train_extractor_on_a_colour_folder_learns_its_classes(tmp_path):
    """A CIFAR-like (32 px RGB) labelled folder gets a 3-stage colour classifier that tells its
    classes apart: red discs from blue squares, at random places and sizes."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    for label, colour, shape in (
        ("disc", (220, 40, 40), "ellipse"),
        ("square", (40, 60, 220), "rectangle"),
    ):
        (tmp_path / "shapes" / label).mkdir(parents=True)
        for i in range(48):
            image = Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 60, 3)))
            x, y, r = (int(v) for v in rng.integers(4, 14, 3))
            getattr(ImageDraw.Draw(image), shape)([x, y, x + r + 6, y + r + 6], fill=colour)
            image.save(tmp_path / "shapes" / label / f"{i}.png")
    out, spec = train_extractor(
        str(tmp_path / "shapes"),
        tmp_path / "shapes.safetensors",
        epochs=8,
        batch_size=16,
        resolution=32,
        heldout_per_class=8,
        log=lambda _: None,
    )
    assert (spec.channels, spec.resolution, spec.num_classes) == (3, 32, 2)
    assert len(spec.widths) == 3 and spec.class_names == ("disc", "square")
    assert spec.test_accuracy >= 0.9
    model = load_classifier(out)
    assert model.spec.test_accuracy == spec.test_accuracy


def test_every_packaged_extractor_ships_and_records_its_accuracy():
    for name, (filename, _) in PACKAGED.items():
        spec = read_spec(WEIGHTS_DIR / filename)
        assert spec.name == name and spec.num_classes == 10 and spec.test_size >= 1000
        assert spec.test_accuracy >= 0.85, (name, spec.test_accuracy)
    assert default_extractor(1, "fashion-mnist") == "fashion-mnist"
    assert default_extractor(1, "mnist-mini") == "mnist"
    assert default_extractor(3, "cifar10") == "inception"

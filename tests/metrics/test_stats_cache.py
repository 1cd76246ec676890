"""Cached real-data features: hits, invalidation by data or extractor, damaged files, where the
files go, and an unwritable cache."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
import torch

from ganforge.data import load_dataset
from ganforge.errors import GanforgeError
from ganforge.metrics import extract_features, load_extractor, real_features, stats_cache
from ganforge.metrics.stats_cache import cache_file, data_fingerprint


@pytest.fixture(scope="module")
def images():
    return load_dataset("mnist-mini").images[::50].clone()  # 100 images, every class


@pytest.fixture(scope="module")
def extractor():
    return load_extractor("mnist")


@pytest.fixture
def calls(monkeypatch):
    """Counts the extractions real_features runs; `calls.fail = True` makes the next one raise."""

    class Calls:
        count = 0
        fail = False

    def counting(*args, **kwargs):
        if Calls.fail:
            raise AssertionError("features were extracted, not read from the cache")
        Calls.count += 1
        return extract_features(*args, **kwargs)

    monkeypatch.setattr(stats_cache, "extract_features", counting)
    return Calls


def write_npz(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def npz_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_second_call_hits_the_cache(tmp_path, images, extractor, calls):
    first = real_features(images, extractor, label="mnist-mini", root=tmp_path)
    assert calls.count == 1
    files = npz_files(tmp_path)
    assert len(files) == 1 and files[0].suffix == ".npz"
    assert files[0].name.startswith("mnist-mini-mnist-")
    mtime = files[0].stat().st_mtime_ns

    calls.fail = True
    second = real_features(images, extractor, label="mnist-mini", root=tmp_path)
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.logits, first.logits)
    assert second.extractor == first.extractor == extractor.identity()
    assert second.features.dtype == np.float32
    assert files[0].stat().st_mtime_ns == mtime  # not rewritten
    # and what comes back is what a fresh extraction gives
    np.testing.assert_array_equal(second.features, extract_features(extractor, images).features)


def test_one_changed_pixel_is_a_new_entry(tmp_path, images, extractor, calls):
    real_features(images, extractor, root=tmp_path)
    changed = images.clone()
    changed[3, 0, 14, 14] ^= 0xFF
    found = real_features(changed, extractor, root=tmp_path)
    assert calls.count == 2
    assert len(npz_files(tmp_path)) == 2
    fresh = extract_features(extractor, changed).features
    np.testing.assert_array_equal(found.features, fresh)
    assert data_fingerprint(changed) != data_fingerprint(images)
    # the changed image's features differ; the others do not
    original = real_features(images, extractor, root=tmp_path)
    assert calls.count == 2
    assert not np.array_equal(found.features[3], original.features[3])
    np.testing.assert_array_equal(found.features[4:], original.features[4:])


def test_a_different_extractor_is_a_new_entry(tmp_path, images, extractor, calls):
    real_features(images, extractor, root=tmp_path)
    other = load_extractor("mnist")
    with torch.no_grad():
        other.head.bias[0] += 1.0  # before identity() is first asked for
    assert other.identity() != extractor.identity()
    found = real_features(images, other, root=tmp_path)
    assert calls.count == 2
    assert len(npz_files(tmp_path)) == 2
    assert found.extractor == other.identity()


def test_fingerprint_covers_shape_as_well_as_bytes(images):
    flat = images.reshape(len(images), 1, 14, 56)  # same bytes, other shape
    assert data_fingerprint(flat) != data_fingerprint(images)
    assert data_fingerprint(images.clone()) == data_fingerprint(images)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not a zip file at all"),
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # truncated
        lambda p: p.write_bytes(b""),
        lambda p: write_npz(p, something=np.zeros(3)),  # a valid .npz, without our arrays
    ],
    ids=["garbage", "truncated", "empty", "wrong-arrays"],
)
def test_a_damaged_cache_file_is_recomputed(tmp_path, images, extractor, calls, damage):
    first = real_features(images, extractor, root=tmp_path)
    (path,) = npz_files(tmp_path)
    damage(path)
    again = real_features(images, extractor, root=tmp_path)
    assert calls.count == 2
    np.testing.assert_array_equal(again.features, first.features)
    # the entry was rewritten whole: the next call reads it
    calls.fail = True
    np.testing.assert_array_equal(
        real_features(images, extractor, root=tmp_path).features, first.features
    )


def test_an_entry_for_other_data_at_the_same_path_is_not_used(tmp_path, images, extractor, calls):
    # a file whose recorded fingerprint does not match (e.g. copied from elsewhere) is ignored
    real_features(images, extractor, root=tmp_path)
    (path,) = npz_files(tmp_path)
    other = images.flip(0).contiguous()
    real_features(other, extractor, root=tmp_path)
    other_path = cache_file("data", extractor, data_fingerprint(other), tmp_path)
    path.write_bytes(other_path.read_bytes())  # the flipped set's features under this key
    found = real_features(images, extractor, root=tmp_path)
    assert calls.count == 3
    np.testing.assert_array_equal(found.features, extract_features(extractor, images).features)


def test_use_cache_false_neither_reads_nor_writes(tmp_path, images, extractor, calls):
    real_features(images, extractor, root=tmp_path, use_cache=False)
    assert npz_files(tmp_path) == []
    real_features(images, extractor, root=tmp_path)
    real_features(images, extractor, root=tmp_path, use_cache=False)
    assert calls.count == 3


def test_cache_goes_under_ganforge_cache(tmp_path, monkeypatch, images, extractor, calls):
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache-home"))
    real_features(images, extractor, label="some/odd label!")
    (path,) = npz_files(tmp_path)
    assert path.parent == tmp_path / "cache-home" / "stats"
    assert path.name.startswith("some_odd_label-mnist-")
    calls.fail = True
    real_features(images, extractor, label="some/odd label!")


def test_an_unwritable_cache_only_costs_time(tmp_path, images, extractor, calls):
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache root cannot be created under a file")
    found = real_features(images, extractor, root=blocker / "stats")
    found_again = real_features(images, extractor, root=blocker / "stats")
    assert calls.count == 2
    np.testing.assert_array_equal(found.features, found_again.features)


def test_non_uint8_images_are_an_error(tmp_path, images, extractor):
    with pytest.raises(GanforgeError, match="uint8"):
        real_features(images.float(), extractor, root=tmp_path)
    assert npz_files(tmp_path) == []


# ---- a cache file that lies: verified before use, recomputed with a one-line note ------------


def entry_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def sha256_of(*arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()


def rewrite_entry(path, change, *, fix_checksum=True):
    """Rewrite the entry with `change(arrays)` applied; by default its checksum is made to
    match the new values, so that only the check under test can refuse it."""
    arrays = entry_arrays(path)
    change(arrays)
    if fix_checksum:
        arrays["checksum"] = np.str_(sha256_of(arrays["features"], arrays["logits"]))
    write_npz(path, **arrays)


def set_value(value):
    def change(arrays):
        arrays["features"] = arrays["features"].copy()
        arrays["features"][5, 7] = value

    return change


def declared_array(shape, dtype="<f4") -> bytes:
    """A .npy member whose header declares `shape` but which holds 16 bytes of values."""
    handle = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(handle, header)
    return handle.getvalue() + bytes(16)


def replace_member(path, name: str, data: bytes):
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    members[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda p: rewrite_entry(p, set_value(np.nan)), "'features' holds NaN or infinite"),
        (lambda p: rewrite_entry(p, set_value(1e38)), "'features' holds 1e+38, beyond 1e+06"),
        (lambda p: rewrite_entry(p, set_value(3.5), fix_checksum=False), "checksum"),
        (
            lambda p: rewrite_entry(p, lambda a: a.update(features=a["features"][:, :64])),
            "'features' is float32 (100, 64), expected f (100, 128)",
        ),
        (
            lambda p: rewrite_entry(p, lambda a: a.update(logits=a["logits"][:99])),
            "'logits' is float32 (99, 10)",
        ),
        (
            lambda p: replace_member(p, "features.npy", declared_array((10**7, 10**5))),
            "'features' is float32 (10000000, 100000), expected f (100, 128)",
        ),
        (
            lambda p: replace_member(p, "data.npy", declared_array((10**12,), "<U64")),
            "'data' is <U64 (1000000000000,)",
        ),
        (lambda p: rewrite_entry(p, lambda a: a.pop("checksum"), fix_checksum=False), "holds"),
    ],
    ids=["nan", "1e38", "checksum", "feature-dim", "count", "huge", "huge-string", "no-checksum"],
)
def test_a_lying_cache_file_is_noted_and_recomputed(
    tmp_path, images, extractor, calls, capfd, damage, why
):
    first = real_features(images, extractor, root=tmp_path)
    (path,) = npz_files(tmp_path)
    damage(path)
    capfd.readouterr()
    again = real_features(images, extractor, root=tmp_path)
    assert calls.count == 2
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.logits, first.logits)
    note = capfd.readouterr().err
    assert note.count("\n") == 1 and str(path) in note and why in note, note
    assert note.rstrip().endswith("recomputing them")
    calls.fail = True  # rewritten whole and verified: the next call reads it, quietly
    np.testing.assert_array_equal(
        real_features(images, extractor, root=tmp_path).features, first.features
    )
    assert capfd.readouterr().err == ""


def test_the_written_checksum_is_the_sha256_of_the_values(tmp_path, images, extractor):
    found = real_features(images, extractor, root=tmp_path)
    (path,) = npz_files(tmp_path)
    assert str(entry_arrays(path)["checksum"]) == sha256_of(found.features, found.logits)

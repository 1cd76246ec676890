"""Downloading official files, against a local HTTP server on 127.0.0.1: verified files land
whole; a checksum mismatch, a truncated transfer or a 404 is a clear error that leaves nothing
behind."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.data import cifar, load_dataset, mnist
from ganforge.data.download import DataFile, download_file, ensure_files

PAYLOAD = bytes(range(256)) * 40


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_verifies_and_writes_the_file(mirror, tmp_path):
    mirror.files["/a.bin"] = PAYLOAD
    dest = tmp_path / "out" / "a.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    download_file(f"{mirror.url}/a.bin", dest, md5=md5(PAYLOAD), sha256=sha, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]


@pytest.mark.parametrize(
    ("path", "setup", "words"),
    [
        ("/a.bin", "wrong-md5", ["MD5", "does not match the published", "discarded"]),
        ("/a.bin", "truncated", ["cut short", "nothing was kept"]),
        ("/missing.bin", "none", ["HTTP 404"]),
    ],
)
def test_failed_downloads_leave_nothing_behind(mirror, tmp_path, path, setup, words):
    mirror.files["/a.bin"] = PAYLOAD
    if setup == "truncated":
        mirror.truncated.add("/a.bin")
    published = "0" * 32 if setup == "wrong-md5" else md5(PAYLOAD)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"the old file stays as it was")
    url = f"{mirror.url}{path}"
    with pytest.raises(GanforgeError) as info:
        download_file(url, folder / "a.bin", md5=published, progress=False)
    message = str(info.value)
    assert message.startswith(url) and "\n" not in message
    for word in words:
        assert word in message
    assert [p.name for p in folder.iterdir()] == ["a.bin"]  # no partial or temporary file
    assert (folder / "a.bin").read_bytes() == b"the old file stays as it was"


def test_wrong_sha256_is_refused(mirror, tmp_path):
    mirror.files["/a.bin"] = PAYLOAD
    with pytest.raises(GanforgeError, match="SHA-256"):
        download_file(f"{mirror.url}/a.bin", tmp_path / "a.bin", md5=md5(PAYLOAD), sha256="0" * 64)
    assert not list(tmp_path.iterdir())


def test_ensure_files_tries_the_next_mirror(mirror, data_root):
    mirror.files["/good/x.gz"] = PAYLOAD
    mirror.files["/bad/x.gz"] = PAYLOAD[:-1]
    files = [DataFile("x.gz", md5(PAYLOAD), local_names=("x",))]
    mirrors = [f"{mirror.url}/gone/", f"{mirror.url}/bad/", f"{mirror.url}/good/"]
    paths = ensure_files("thing", files, mirrors, progress=False)
    assert paths == [data_root / "thing" / "x.gz"] and paths[0].read_bytes() == PAYLOAD
    # found on disk the second time: the server is not asked again
    mirror.files.clear()
    assert ensure_files("thing", files, mirrors, progress=False) == paths


def test_every_mirror_failing_is_one_error_naming_files_and_folder(mirror, data_root):
    files = [DataFile("x.gz", md5(PAYLOAD))]
    with pytest.raises(GanforgeError) as info:
        ensure_files("thing", files, [f"{mirror.url}/a/", f"{mirror.url}/b/"], progress=False)
    message = str(info.value)
    assert message.startswith("--data thing: missing x.gz; place the official files in")
    assert str(data_root / "thing") in message
    assert message.count("HTTP 404") == 2 and "\n" not in message
    assert not (data_root / "thing").exists() or not list((data_root / "thing").iterdir())


def test_an_unreachable_mirror_is_the_offline_error(data_root, monkeypatch):
    monkeypatch.delenv("GANFORGE_OFFLINE")
    # nothing listens on port 9 of 127.0.0.1 (discard): the connection is refused at once
    files = [DataFile("x.gz", md5(PAYLOAD))]
    with pytest.raises(GanforgeError, match="missing x.gz.*download failed"):
        ensure_files("thing", files, ["http://127.0.0.1:9/"], progress=False)


def serve_mnist(mirror, write_mnist, tmp_path, splits=("train",)):
    """Put official-format MNIST files on the mirror under /mnist/, with their checksums."""
    checksums = {}
    for split in splits:
        write_mnist(tmp_path / "served", n=50, split=split)
    for path in (tmp_path / "served").iterdir():
        mirror.files[f"/mnist/{path.name}"] = path.read_bytes()
        checksums[path.name] = md5(path.read_bytes())
    return checksums


def test_mnist_downloads_from_the_mirror_then_loads(
    mirror, data_root, tmp_path, write_mnist, monkeypatch
):
    checksums = serve_mnist(mirror, write_mnist, tmp_path)
    spec = mnist.IdxDataset("mnist", (), {**mnist.MNIST.md5s, **checksums}, tuple("0123456789"))
    monkeypatch.setitem(mnist.IDX_DATASETS, "mnist", spec)
    monkeypatch.setenv("GANFORGE_DATA_MIRROR", mirror.url)
    dataset = load_dataset("mnist")
    assert len(dataset) == 50
    assert sorted(p.name for p in (data_root / "mnist").iterdir()) == sorted(checksums)


def test_a_corrupt_mirror_copy_never_becomes_the_dataset(
    mirror, data_root, tmp_path, write_mnist, monkeypatch
):
    serve_mnist(mirror, write_mnist, tmp_path)  # the real MNIST checksums will not match
    monkeypatch.setenv("GANFORGE_DATA_MIRROR", mirror.url)
    with pytest.raises(GanforgeError) as info:
        load_dataset("mnist")
    assert "does not match the published f68b3c2dcbeaaa9fbdd348bbdeb94873" in str(info.value)
    assert not list((data_root / "mnist").iterdir())


def test_cli_data_download(mirror, data_root, tmp_path, write_mnist, monkeypatch, capsys):
    checksums = serve_mnist(mirror, write_mnist, tmp_path, splits=("train", "test"))
    spec = mnist.IdxDataset("mnist", (), checksums, tuple("0123456789"))
    monkeypatch.setitem(mnist.IDX_DATASETS, "mnist", spec)
    monkeypatch.setenv("GANFORGE_DATA_MIRROR", mirror.url)
    root = tmp_path / "chosen-root"
    assert main(["data", "download", "mnist", "--data-root", str(root)]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(root / "mnist" / name) for name in checksums)
    assert np.array_equal(
        load_dataset("mnist", data_root=str(root), split="test").labels.numpy() % 10,
        np.arange(50) % 10,
    )
    assert main(["data", "download", "digits"]) == 2
    assert "no files to download" in capsys.readouterr().err


def test_cifar_archive_download_cut_short_then_whole(
    mirror, data_root, tmp_path, write_cifar, monkeypatch
):
    images, _ = write_cifar(tmp_path / "served")
    archive = (tmp_path / "served" / "cifar-10-binary.tar.gz").read_bytes()
    mirror.files["/cifar10/cifar-10-binary.tar.gz"] = archive
    mirror.truncated.add("/cifar10/cifar-10-binary.tar.gz")
    spec = cifar.CIFAR10
    patched = dataclasses.replace(spec, archive=DataFile(spec.archive.filename, md5(archive)))
    monkeypatch.setitem(cifar.CIFAR_DATASETS, "cifar10", patched)
    monkeypatch.setenv("GANFORGE_DATA_MIRROR", mirror.url)
    with pytest.raises(GanforgeError, match="cut short"):
        load_dataset("cifar10")
    assert not list((data_root / "cifar10").iterdir())  # no partial archive to trip over later
    mirror.truncated.clear()
    assert np.array_equal(load_dataset("cifar10").images.numpy(), images)
    assert [p.name for p in (data_root / "cifar10").iterdir()] == ["cifar-10-binary.tar.gz"]


# ---- bounded in time and size ------------------------------------------------------------


def test_a_server_dripping_a_byte_at_a_time_fails_at_the_deadline(mirror, tmp_path):
    """One byte per 0.2 s: each read is quick, so only a deadline on the whole download ends
    it (the test's deadline is 1 s; the body would take 20 s)."""
    mirror.files["/slow.bin"] = PAYLOAD[:100]
    mirror.dripped.add("/slow.bin")
    dest = tmp_path / "slow.bin"
    url = f"{mirror.url}/slow.bin"
    with pytest.raises(GanforgeError) as info:
        download_file(url, dest, md5=md5(PAYLOAD[:100]), progress=False, deadline_s=1.0)
    message = str(info.value)
    assert message.startswith(f"{url}: not finished within 1 s") and "\n" not in message
    assert "nothing was kept" in message
    assert mirror.dripped_bytes < 50  # it gave up long before the server was done
    assert list(tmp_path.iterdir()) == []  # no partial file, under any name


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "no-content-length"])
def test_a_server_sending_more_than_the_cap_fails_naming_it(mirror, tmp_path, sized):
    mirror.files["/big.bin"] = PAYLOAD  # 10,240 bytes
    if not sized:
        mirror.unsized.add("/big.bin")
    url = f"{mirror.url}/big.bin"
    with pytest.raises(GanforgeError) as info:
        download_file(url, tmp_path / "big.bin", progress=False, max_bytes=4096)
    message = str(info.value)
    assert message.startswith(url) and "cap of 4,096 bytes" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []
    download_file(url, tmp_path / "big.bin", progress=False, max_bytes=len(PAYLOAD))  # at the cap
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD


def test_a_dataset_file_is_capped_at_twice_its_known_size(mirror, data_root):
    mirror.files["/thing/t.bin"] = PAYLOAD
    small = DataFile("t.bin", md5(PAYLOAD), size=len(PAYLOAD) // 4)
    with pytest.raises(GanforgeError, match="cap of 5,120 bytes"):
        ensure_files("thing", [small], [f"{mirror.url}/thing/"], progress=False)
    assert not (data_root / "thing" / "t.bin").exists()
    right = dataclasses.replace(small, size=len(PAYLOAD))
    (path,) = ensure_files("thing", [right], [f"{mirror.url}/thing/"], progress=False)
    assert path.read_bytes() == PAYLOAD


def test_official_mirrors_use_https_where_they_have_it():
    """yann.lecun.com serves no https; it stays, last, behind an https mirror (checksummed)."""
    for dataset in (mnist.MNIST, mnist.FASHION_MNIST, mnist.KMNIST):
        assert dataset.mirrors[0].startswith("https://"), dataset.mirrors
        plain = [m for m in dataset.mirrors if not m.startswith("https://")]
        assert plain in ([], ["http://yann.lecun.com/exdb/mnist/"]), plain
    assert all(m.startswith("https://") for m in cifar.MIRRORS)


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_every_official_file_is_capped_at_twice_its_published_size():
    splits = ("train", "test")
    files = [f for spec in mnist.IDX_DATASETS.values() for s in splits for f in spec.files(s)]
    files += [spec.binary for spec in cifar.CIFAR_DATASETS.values()]
    assert len(files) == 14
    for file in files:
        assert file.size and file.max_bytes == 2 * file.size, file.filename
    assert 9_000_000 < mnist.MNIST.files("train")[0].size < 10_000_000  # 9.9 MB, the known one
    assert all(160 << 20 < spec.binary.size < 165 << 20 for spec in cifar.CIFAR_DATASETS.values())


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(),
    reason="needs Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_sizes_are_those_of_the_real_files():
    """Debian's copies are the published .gz files without gzip's optional file-name field
    (FLG.FNAME clear, the compressed data and trailer unchanged, so their MD5 differs): the
    published size is a copy's size plus that name and its NUL (nothing, when it has one)."""
    for split in ("train", "test"):
        for file in mnist.FASHION_MNIST.files(split):
            data = (DEBIAN_FASHION / file.filename).read_bytes()
            assert data[:3] == b"\x1f\x8b\x08", file.filename  # gzip, deflate
            has_name = data[3] & 0x08
            name_bytes = 0 if has_name else len(file.filename.removesuffix(".gz")) + 1
            assert file.size == len(data) + name_bytes, file.filename

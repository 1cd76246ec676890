"""Data fixtures: an isolated data root, small files in the official formats (written here, not
downloaded), and an HTTP server on 127.0.0.1 standing in for the official mirrors."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ganforge.data import roots
from ganforge.data.idx import write_idx

SERVER_LIFETIME_S = 120  # the test server stops itself even if a test never tears it down


@pytest.fixture(autouse=True)
def data_root(tmp_path, monkeypatch) -> Path:
    """$GANFORGE_DATA and the system location point into tmp_path; the network is off unless a
    test serves files itself, so no test can reach (or depend on) the real mirrors."""
    root = tmp_path / "data-root"
    monkeypatch.setenv("GANFORGE_DATA", str(root))
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")
    monkeypatch.delenv("GANFORGE_DATA_MIRROR", raising=False)
    monkeypatch.setattr(roots, "SYSTEM_DATA_DIRS", (tmp_path / "system",))
    return root


def idx_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` 28x28 uint8 images (a bright square whose place depends on the label) and labels."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for image, label in zip(images, labels):
        image[2 + 2 * label : 8 + 2 * label, 4:24] = 250
    return images, labels


@pytest.fixture
def write_mnist():
    """`write_mnist(folder, n=50, split="train", gz=True)` writes an official-format IDX pair
    and returns (images, labels)."""

    def _write(folder: Path, n: int = 50, split: str = "train", gz: bool = True, seed: int = 0):
        images, labels = idx_digits(n, seed)
        prefix = "train" if split == "train" else "t10k"
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        return images, labels

    return _write


def cifar_records(n: int, label_bytes: int, num_classes: int, seed: int = 0):
    """`n` CIFAR binary records and the (images (n, 3, 32, 32), labels) they encode."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=n).astype(np.uint8)
    coarse = (labels // 5).astype(np.uint8)
    head = np.stack([coarse, labels], axis=1) if label_bytes == 2 else labels[:, None]
    records = np.concatenate([head, images.reshape(n, -1)], axis=1)
    return records.tobytes(), images, labels.astype(np.int64)


CIFAR10_NAMES = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"


@pytest.fixture
def write_cifar():
    """`write_cifar(folder, variant="cifar10", archive=True)` writes the official binary version
    (train: 20 images, 4 per batch file for CIFAR-10; test: 4) as the .tar.gz or its extracted
    folder, and returns (train images, train labels)."""

    def _write(folder: Path, variant: str = "cifar10", archive: bool = True):
        if variant == "cifar10":
            top = "cifar-10-batches-bin"
            parts = [cifar_records(4, 1, 10, seed=i) for i in range(5)]
            members = {f"data_batch_{i + 1}.bin": p[0] for i, p in enumerate(parts)}
            members["test_batch.bin"] = cifar_records(4, 1, 10, seed=9)[0]
            members["batches.meta.txt"] = CIFAR10_NAMES.encode()
            tar_name = "cifar-10-binary.tar.gz"
        else:
            top = "cifar-100-binary"
            parts = [cifar_records(20, 2, 100, seed=3)]
            members = {"train.bin": parts[0][0], "test.bin": cifar_records(4, 2, 100, seed=4)[0]}
            members["fine_label_names.txt"] = "".join(f"fine{i}\n" for i in range(100)).encode()
            tar_name = "cifar-100-binary.tar.gz"
        folder.mkdir(parents=True, exist_ok=True)
        if archive:
            (folder / tar_name).write_bytes(tar_gz(top, members))
        else:
            for name, data in members.items():
                (folder / top).mkdir(exist_ok=True)
                (folder / top / name).write_bytes(data)
        return np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])

    return _write


def tar_gz(top: str, members: dict[str, bytes]) -> bytes:
    """A .tar.gz holding `members` under the folder `top`, as the official archives do."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def make_tar_gz():
    return tar_gz


@pytest.fixture
def make_cifar_records():
    return cifar_records


class _MirrorHandler(BaseHTTPRequestHandler):
    """Serves server.files (URL path -> bytes); paths in server.truncated send half the body
    under the full Content-Length, then hang up; paths in server.dripped send one byte every
    0.2 s (until the client hangs up); paths in server.unsized send no Content-Length."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if self.path not in self.server.unsized:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.server.dripped:
            try:
                for byte in body:  # bounded: the body's length, at most
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    self.server.dripped_bytes += 1
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should
            return
        if self.path in self.server.unsized:
            self.close_connection = True
        if self.path in self.server.truncated:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror(monkeypatch):
    """A local HTTP server on 127.0.0.1: put bytes in `mirror.files["/path"]`; `mirror.url`."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("GANFORGE_OFFLINE")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MirrorHandler)
    server.daemon_threads = True
    server.files, server.truncated = {}, set()
    server.dripped, server.unsized, server.dripped_bytes = set(), set(), 0
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    deadline = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    deadline.daemon = True
    deadline.start()
    try:
        yield server
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

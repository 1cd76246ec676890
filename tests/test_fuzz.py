"""Property-based fuzz tests: for hostile input ganforge may only raise GanforgeError.

The contract: a config, a config file, an image folder, a checkpoint, a run folder or an
official dataset file that is damaged or hostile gives either a valid result or a GanforgeError
with a one-line message. Never another exception type, never a crash, never code execution
(nothing is unpickled unless the user passed --trust-pickle).

Every property runs a fixed number of examples (`derandomize=True`: the same inputs on every
run, so CI cannot flake) and no example database is written; GANFORGE_FUZZ_SCALE multiplies the
counts. The `@example`s are minimal inputs that broke the contract when this suite was written;
`pytest --hypothesis-show-statistics` prints how many examples each property ran.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import math
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import ganforge
from ganforge import GanforgeError
from ganforge.config import TrainConfig, load_config_file
from ganforge.data import load_dataset, roots
from ganforge.data.cifar import CIFAR10_CLASSES
from ganforge.data.idx import write_idx
from ganforge.training.checkpoint import load_checkpoint, save_checkpoint

# GANFORGE_FUZZ_SCALE=20 runs twenty times the examples of every property: for a longer hunt by
# hand; the default keeps the suite at about twenty seconds.
FUZZ_SCALE = float(os.environ.get("GANFORGE_FUZZ_SCALE", "1"))


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max(1, round(max_examples * FUZZ_SCALE)),
        deadline=None,
        database=None,  # no .hypothesis/ folder in the checkout
        derandomize=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def outcome(call: Callable[[], Any]) -> tuple[Any, GanforgeError | None]:
    """(result, None) or (None, the GanforgeError); any other exception fails the test as is."""
    try:
        return call(), None
    except GanforgeError as exc:
        message = str(exc)
        assert message.strip(), "a GanforgeError without a message"
        assert "\n" not in message, f"a GanforgeError message over several lines: {message!r}"
        return None, exc


@pytest.fixture(autouse=True, scope="module")
def offline(tmp_path_factory):
    """No test here may reach the network, the user's data root or /usr/share/datasets."""
    base = tmp_path_factory.mktemp("fuzz-env")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANFORGE_OFFLINE", "1")
        patch.setenv("GANFORGE_DATA", str(base / "data-root"))
        patch.delenv("GANFORGE_DATA_MIRROR", raising=False)
        patch.setattr(roots, "SYSTEM_DATA_DIRS", (base / "system",))
        yield


def scratch() -> tempfile.TemporaryDirectory:
    """A fresh folder per hypothesis example (tmp_path is shared by all examples of a test)."""
    return tempfile.TemporaryDirectory(prefix="ganforge-fuzz-")


# ---- byte mutations ---------------------------------------------------------------------------
#
# An op is a plain tuple, so a failing case can be written down as an @example:
#   ("truncate", pos, near)          keep data[:pos]
#   ("flip", pos, near, mask)        data[pos] ^= mask
#   ("insert", pos, near, bytes)     insert bytes before pos
#   ("delete", pos, near, n)         drop n bytes from pos
#   ("overwrite", pos, near, bytes)  overwrite from pos
#   ("empty",)                       no bytes at all
#   ("u64", relative, value)         the first 8 bytes (safetensors' header length) := value,
#                                    or original + value when `relative`
#   ("replace", old, new)            the first `old` becomes `new`; the safetensors header
#                                    length follows (a checkpoint whose JSON was edited)
# `near` puts pos in the first `hot` bytes (a file's header), else anywhere in the file.

POSITIONS = st.integers(min_value=0, max_value=2**31)


def byte_ops(with_u64: bool = False, extra: st.SearchStrategy | None = None) -> st.SearchStrategy:
    near = st.booleans()
    ops = [
        st.tuples(st.just("truncate"), POSITIONS, near),
        st.tuples(st.just("flip"), POSITIONS, near, st.integers(1, 255)),
        st.tuples(st.just("insert"), POSITIONS, near, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), POSITIONS, near, st.integers(1, 64)),
        st.tuples(st.just("overwrite"), POSITIONS, near, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("empty")),
    ]
    if with_u64:
        ops.append(
            st.tuples(
                st.just("u64"),
                st.just(True),
                st.sampled_from([-9, -8, -1, 1, 7, 8, 1 << 20]) | st.integers(-64, 64),
            )
            | st.tuples(
                st.just("u64"),
                st.just(False),
                st.sampled_from([0, 1, 2, 8, 2**32, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1),
            )
        )
    if extra is not None:
        ops.extend([extra, extra])
    return st.lists(st.one_of(ops), min_size=1, max_size=4)


def mutate(data: bytes, ops: list[tuple], hot: int = 64) -> bytes:
    out = bytearray(data)
    for op in ops:
        kind = op[0]
        if kind == "empty":
            out = bytearray()
            continue
        if kind == "replace":
            _, before, after = op
            at = out.find(before)
            if at >= 0:
                out[at : at + len(before)] = after
                end = int.from_bytes(bytes(out[:8]), "little") + 8 if len(out) >= 8 else 0
                if at < end:  # inside a safetensors header: keep its length right
                    length = min(end - 8 + len(after) - len(before), 2**64 - 1)
                    out[:8] = length.to_bytes(8, "little")
            continue
        if kind == "u64":
            _, relative, value = op
            old = int.from_bytes(bytes(out[:8]).ljust(8, b"\0"), "little")
            value = min(max(old + value if relative else value, 0), 2**64 - 1)
            out[:8] = value.to_bytes(8, "little")
            continue
        pos, near = op[1], op[2]
        span = min(hot, len(out)) if near else len(out)
        pos = pos % (span + 1)
        if kind == "truncate":
            del out[pos:]
        elif kind == "flip":
            if pos < len(out):
                out[pos] ^= op[3]
        elif kind == "insert":
            out[pos:pos] = op[3]
        elif kind == "delete":
            del out[pos : pos + op[3]]
        elif kind == "overwrite":
            out[pos : pos + len(op[3])] = op[3]
    return bytes(out)


# ---- 1. configs -------------------------------------------------------------------------------

FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
HUGE = st.sampled_from([10**400, -(10**400), 2**1024, -(2**63), 2**64, 10**20])
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-3, 100)
    | HUGE
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, 0.5, 0.999, 1.0, 1e-300, 1e308, math.inf, -math.inf, math.nan])
    | st.text(max_size=12)
    | st.sampled_from(["adam", "sgd", "saturating", "cpu", "auto", "stream", "digits", "mlp"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
OPTION_NAMES = (
    st.sampled_from(FIELDS)
    | st.sampled_from(FIELDS).map(lambda name: name.replace("_", "-"))
    | st.text(max_size=14)
)
CONFIG_DICTS = st.dictionaries(
    OPTION_NAMES, JSON_VALUES | JSON_SCALARS, max_size=6
) | st.dictionaries(st.sampled_from(FIELDS), JSON_SCALARS, max_size=4)


def check_config(values: dict) -> None:
    config, _ = outcome(lambda: TrainConfig.from_dict(values))
    if config is not None:
        assert isinstance(config, TrainConfig)
        config.validate()  # a returned config is a valid one
        again = TrainConfig.from_dict(config.to_dict())  # and survives a round trip
        assert again.to_dict() == config.to_dict() or any(
            isinstance(v, float) and math.isnan(v) for v in config.to_dict().values()
        )


@fuzz(400)
@given(values=CONFIG_DICTS)
@example(values={"lr_g": 10**400})  # OverflowError: int too large to convert to float
@example(values={"beta1": -(10**400)})
def test_config_from_dict_only_raises_ganforge_error(values):
    check_config(values)


TOML_LINES = st.lists(
    st.tuples(
        OPTION_NAMES.filter(lambda s: s.strip() != ""),
        st.sampled_from(
            [
                "1",
                "-7",
                "1.5e400",
                "inf",
                "nan",
                '"adam"',
                "true",
                "[1, 2]",
                "{a = 1}",
                "1979-05-27",
                "0x10",
                "1_000",
                '"\\u00e9"',
                "'''x'''",
                "9" * 30,
            ]
        ),
    ),
    max_size=5,
).map(lambda rows: "".join(f"{json.dumps(k)} = {v}\n" for k, v in rows))
CONFIG_TEXT = (
    CONFIG_DICTS.map(lambda d: json.dumps(d, allow_nan=True, default=str))
    | TOML_LINES
    | st.text(max_size=80)
)
CONFIG_BYTES = (
    CONFIG_TEXT.map(str.encode)
    | st.binary(max_size=120)
    | st.tuples(CONFIG_TEXT.map(str.encode), byte_ops()).map(lambda a: mutate(a[0], a[1]))
)


@fuzz(250)
@given(suffix=st.sampled_from([".json", ".toml", ".JSON", ".Toml"]), payload=CONFIG_BYTES)
@example(suffix=".json", payload=b"1" * 4301)  # ValueError: Exceeds the limit (4300 digits)
@example(suffix=".toml", payload=b"a = " + b"1" * 4301)  # same ValueError, from tomllib
@example(suffix=".json", payload=b"[" * 100_000)  # RecursionError from json
@example(suffix=".toml", payload=b"a = " + b"[" * 100_000)  # RecursionError from tomllib
@example(suffix=".json", payload=b'{"lr_g": ' + b"9" * 400 + b"}")  # OverflowError, from_dict
def test_config_file_only_raises_ganforge_error(tmp_path, suffix, payload):
    with scratch() as folder:
        path = Path(folder) / f"config{suffix}"
        path.write_bytes(payload)
        values, _ = outcome(lambda: load_config_file(path))
        if values is not None:
            assert isinstance(values, dict)
            check_config(values)  # what the CLI does next with the file's options


# ---- 2. image folders -------------------------------------------------------------------------

RESOLUTION = 16
FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]
FORMAT_SUFFIX = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "GIF": ".gif",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "WEBP": ".webp",
}
IMAGE_SUFFIXES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".PNG"]


@st.composite
def real_images(draw, formats: tuple[str, ...] = tuple(FORMATS)) -> tuple[str, bytes]:
    """(suffix, bytes) of a small image encoded by Pillow."""
    fmt = draw(st.sampled_from(formats))
    width, height = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1"]))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB").convert(mode)
    if fmt == "JPEG" and mode not in ("L", "RGB"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return FORMAT_SUFFIX[fmt], buffer.getvalue()


def damaged(image: tuple[str, bytes], ops: list[tuple]) -> tuple[str, bytes]:
    return image[0], mutate(image[1], ops)


ANY_FILE = st.one_of(
    st.tuples(st.sampled_from(IMAGE_SUFFIXES + [".txt"]), st.binary(max_size=200)),
    real_images(),
    st.builds(damaged, real_images(), byte_ops()),
    st.builds(damaged, real_images(), byte_ops()),
)


def decodes(path: Path) -> bool:
    """What read_square does at RESOLUTION, grayscale, with Pillow directly: does it work?"""
    if path.suffix.lower() not in {
        ".png",
        ".jpg",
        ".jpeg",
        ".webp",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
    }:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.draft(None, (RESOLUTION, RESOLUTION))
                width, height = image.size
                side = min(width, height)
                left, top = (width - side) // 2, (height - side) // 2
                image = image.crop((left, top, left + side, top + side)).convert("L")
                if side != RESOLUTION:
                    image = image.resize(
                        (RESOLUTION, RESOLUTION), Image.Resampling.LANCZOS, reducing_gap=3.0
                    )
                np.asarray(image, dtype=np.uint8)
        return True
    except Exception:
        return False


def check_image_folder(files: list[tuple[str, bytes]]) -> None:
    with scratch() as folder:
        folder = Path(folder)
        paths = []
        for index, (suffix, data) in enumerate(files):
            paths.append(folder / f"f{index:02d}{suffix}")
            paths[-1].write_bytes(data)
        good = {p for p in paths if decodes(p)}
        bad = set(paths) - good

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset, error = outcome(
                lambda: load_dataset(str(folder), resolution=RESOLUTION, channels=1)
            )
        if not good:
            assert error is not None, "a folder without one readable image loaded"
        else:
            assert error is None, f"readable images {sorted(good)} were not loaded: {error}"
            assert tuple(dataset.images.shape) == (len(good), 1, RESOLUTION, RESOLUTION)
            skipped = {entry.split(": ", 1)[0] for entry in dataset.skipped}
            assert skipped == {str(p) for p in bad}
            said = " ".join(str(w.message) for w in caught)
            assert all(str(p) in said for p in bad), "a skipped file was not named in a warning"

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own, about corrupt EXIF data
            dataset, error = outcome(
                lambda: load_dataset(str(folder), resolution=RESOLUTION, channels=1, strict=True)
            )
        if bad:
            assert error is not None, f"--strict loaded a folder holding {sorted(bad)}"
            # a folder without one image file is refused as such, naming the folder
            named = [str(p) for p in bad] + ([] if good else [str(folder)])
            assert any(name in str(error) for name in named), f"names no bad file: {error}"
        else:
            assert error is None and len(dataset) == len(paths)


@fuzz(70)
@given(files=st.lists(ANY_FILE, min_size=1, max_size=4))
def test_image_folder_only_raises_ganforge_error(files):
    check_image_folder(files)


@fuzz(40)
@given(
    good=real_images(formats=("PNG", "JPEG")),
    bad=st.lists(
        st.tuples(st.sampled_from([".png", ".jpg"]), st.binary(max_size=120))
        | st.builds(damaged, real_images(), byte_ops()),
        min_size=1,
        max_size=3,
    ),
    position=st.integers(0, 3),
)
def test_a_good_image_loads_beside_bad_ones(good, bad, position):
    files = list(bad)
    files.insert(position % (len(files) + 1), good)
    check_image_folder(files)


# ---- 3. checkpoints ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> ganforge.Run:
    out = tmp_path_factory.mktemp("fuzz-run") / "run"
    return ganforge.train(
        model="mlp",
        data="digits",
        width=8,
        batch_size=16,
        z_dim=8,
        steps=4,
        progress=False,
        log_every=2,
        checkpoint_every=2,
        sample_every=100,
        n_grid=4,
        out=str(out),
    )


class Checkpoint:
    """The run's newest checkpoint: its bytes, where its header ends, what it holds."""

    def __init__(self, path: Path):
        self.name = path.name
        self.raw = path.read_bytes()
        self.header_end = 8 + int.from_bytes(self.raw[:8], "little")
        self.tensors, self.metadata = load_checkpoint(path)

    def __repr__(self) -> str:  # hypothesis prints fixtures beside a failing example
        return f"<{self.name}, {len(self.raw)} bytes>"


@pytest.fixture(scope="module")
def newest_checkpoint(tiny_run) -> Checkpoint:
    return Checkpoint(tiny_run.checkpoints[-1][1])


def key(name: str) -> bytes:
    """A key of the ganforge JSON as it sits, escaped, inside the safetensors header."""
    return b'\\"' + name.encode() + b'\\"'


# Hostile edits of a checkpoint's JSON that keep it valid JSON: a key renamed away, or a key
# given a value of the wrong type (`"step": null, "step_": 4`); and edits of the safetensors
# header's own tensor entries.
META_KEYS = [
    "step",
    "config_hash",
    "data_position",
    "batch",
    "epoch",
    "optimizers",
    "discriminator",
    "generator",
    "param_groups",
    "plain_state",
    "params",
    "lr",
    "betas",
    "logbook",
    "counts",
    "images",
    "format",
    "sha256",
    "ganforge",
]
META_VALUES = [
    b"null",
    b"-1",
    b"0",
    b"1e400",
    b"-1e400",
    b'\\"4\\"',
    b"[]",
    b"{}",
    b"true",
    b"123456789012345678901234567890",
    b"NaN",
    b"0.5",
    b"[1, 2]",
    b'{\\"0\\": {}}',
]
HEADER_EDITS = st.one_of(
    st.sampled_from(META_KEYS).map(lambda k: ("replace", key(k), key(k + "_"))),
    st.builds(
        lambda k, v: ("replace", key(k), key(k) + b": " + v + b", " + key(k + "_")),
        st.sampled_from(META_KEYS),
        st.sampled_from(META_VALUES),
    ),
    st.sampled_from(
        [
            ("replace", b'"F32"', b'"F16"'),
            ("replace", b'"F32"', b'"I32"'),
            ("replace", b'"F32"', b'"BOOL"'),
            ("replace", b'"shape":[64]', b'"shape":[65]'),
            ("replace", b'"shape":[64]', b'"shape":[8,8]'),
            ("replace", b'"shape":[64]', b'"shape":[]'),
            ("replace", b'"data_offsets":[0,256]', b'"data_offsets":[0,0]'),
            ("replace", b'"data_offsets":[0,256]', b'"data_offsets":[256,0]'),
            ("replace", b'"__metadata__"', b'"__metadata_x"'),
            ("replace", b'"ganforge":"', b'"ganforge":"7'),
        ]
    ),
)
CHECKPOINT_OPS = byte_ops(with_u64=True, extra=HEADER_EDITS)


# A flip of the file's last byte: the last tensor's data, outside the header (-2 % (n + 1) is
# n - 1). Only the checksum can tell such a file from the original.
FLIP_TENSOR_DATA = [("flip", -2, False, 1)]


def same_tensors(tensors: dict[str, torch.Tensor], original: dict[str, torch.Tensor]) -> bool:
    return tensors.keys() == original.keys() and all(
        torch.equal(tensors[k], original[k]) for k in original
    )


def test_every_checkpoint_carries_the_checksum_the_fuzz_tests_rely_on(newest_checkpoint):
    assert len(newest_checkpoint.metadata["sha256"]) == 64
    damaged = mutate(newest_checkpoint.raw, FLIP_TENSOR_DATA, hot=newest_checkpoint.header_end)
    assert len(damaged) == len(newest_checkpoint.raw) and damaged != newest_checkpoint.raw
    header = newest_checkpoint.header_end
    assert damaged[:header] == newest_checkpoint.raw[:header]


@fuzz(90)
@given(ops=CHECKPOINT_OPS)
@example(ops=FLIP_TENSOR_DATA)  # loads without error: only the checksum can refuse it
def test_mutated_checkpoint_only_raises_ganforge_error(newest_checkpoint, ops):
    original, original_meta = newest_checkpoint.tensors, newest_checkpoint.metadata
    with scratch() as folder:
        path = Path(folder) / newest_checkpoint.name
        path.write_bytes(mutate(newest_checkpoint.raw, ops, hot=newest_checkpoint.header_end))
        loaded, _ = outcome(lambda: load_checkpoint(path))
    if loaded is not None:  # checksummed checkpoints: a file that loads holds what was saved
        tensors, metadata = loaded
        assert metadata == original_meta
        assert same_tensors(tensors, original), "a damaged checkpoint loaded without an error"


def copy_run(run: ganforge.Run, dest: Path) -> Path:
    shutil.copytree(run.path, dest, ignore=shutil.ignore_patterns("loss_curves.png", "*.png"))
    return dest


@fuzz(12)
@given(ops=CHECKPOINT_OPS, keep_older=st.booleans())
@example(ops=[("replace", key("step"), key("step_"))], keep_older=False)  # KeyError: 'step'
@example(ops=FLIP_TENSOR_DATA, keep_older=False)  # damaged weights, only the checksum tells
@example(ops=FLIP_TENSOR_DATA, keep_older=True)
def test_resume_from_a_mutated_checkpoint(tiny_run, newest_checkpoint, ops, keep_older):
    """Resume is exact: whichever checkpoint it starts from, the run's step-4 state is the
    original one, bit for bit; or, with only the damaged checkpoint left, it refuses."""
    mutated = mutate(newest_checkpoint.raw, ops, hot=newest_checkpoint.header_end)
    with scratch() as folder:
        run_dir = copy_run(tiny_run, Path(folder) / "run")
        checkpoints = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))
        if not keep_older:
            for path in checkpoints[:-1]:
                path.unlink()
        checkpoints[-1].write_bytes(mutated)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resumed, error = outcome(lambda: ganforge.train(resume=str(run_dir)))
            if keep_older or mutated == newest_checkpoint.raw:
                # the step-2 checkpoint is intact: the damaged one is skipped, training redoes
                # steps 3 and 4
                assert error is None, f"resume failed although a valid checkpoint was kept: {error}"
            if error is None:
                tensors, _ = load_checkpoint(run_dir / "checkpoints" / newest_checkpoint.name)
                assert same_tensors(tensors, newest_checkpoint.tensors), "resumed wrong weights"
            sample, _ = outcome(lambda: ganforge.load_run(run_dir).sample(2, seed=0))
            if error is None:
                assert np.array_equal(sample, tiny_run.sample(2, seed=0))


def json_paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON document: ("optimizers", "generator", "param_groups", 0)..."""
    items = document.items() if isinstance(document, dict) else enumerate(document)
    paths = []
    for key, value in items:
        paths.append((*prefix, key))
        if isinstance(value, (dict, list)):
            paths.extend(json_paths(value, (*prefix, key)))
    return paths


DELETE = "<delete>"
META_EDIT_VALUES = (
    st.sampled_from([DELETE, None, -1, 0, 1.5, True, "4", [], {}, [0.5, 0.5], {"0": {}}])
    | st.sampled_from([math.nan, math.inf, -math.inf, 10**30, 2**64, -(2**63)])
    | st.integers()
    | st.floats()
)


@fuzz(15)
@given(edits=st.lists(st.tuples(st.integers(0, 2**16), META_EDIT_VALUES), min_size=1, max_size=3))
@example(edits=[(0, DELETE)])  # KeyError: a required field missing
def test_resume_from_a_checkpoint_whose_metadata_was_edited_and_rehashed(tiny_run, edits):
    """The checksum proves a file whole, not that ganforge wrote it: someone who edits the
    metadata can recompute it. What resume reads must still be checked, field by field."""
    with scratch() as folder:
        run_dir = copy_run(tiny_run, Path(folder) / "run")
        checkpoints = sorted((run_dir / "checkpoints").glob("step_*.safetensors"))
        for path in checkpoints[:-1]:
            path.unlink()
        tensors, metadata = load_checkpoint(checkpoints[-1])
        metadata = {k: v for k, v in metadata.items() if k not in ("format", "sha256")}
        for where, value in edits:
            paths = json_paths(metadata)
            *parents, last = paths[where % len(paths)]
            parent = metadata
            for key in parents:
                parent = parent[key]
            if value == DELETE:
                del parent[last]
            else:
                parent[last] = value
        save_checkpoint(checkpoints[-1], tensors, metadata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome(lambda: load_checkpoint(checkpoints[-1]))
            outcome(lambda: ganforge.train(resume=str(run_dir), steps=6))
            outcome(lambda: ganforge.load_run(run_dir).sample(2, seed=0))


RUN_FILES = ["config.json", "metrics.jsonl"]


@fuzz(20)
@given(target=st.sampled_from(RUN_FILES), ops=byte_ops())
@example(target="config.json", ops=[("empty",), ("insert", 0, True, b"[]")])  # AttributeError
@example(target="config.json", ops=[("overwrite", 0, True, b"\xff")])  # UnicodeDecodeError
@example(target="metrics.jsonl", ops=[("overwrite", 0, True, b"\xff")])  # UnicodeDecodeError
def test_resume_and_load_from_a_mutated_run_folder(tiny_run, target, ops):
    with scratch() as folder:
        run_dir = copy_run(tiny_run, Path(folder) / "run")
        path = run_dir / target
        path.write_bytes(mutate(path.read_bytes(), ops))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome(lambda: ganforge.load_run(run_dir).metrics())
            outcome(lambda: ganforge.train(resume=str(run_dir)))


# ---- 4. official dataset files ----------------------------------------------------------------


def idx_pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    with scratch() as folder:
        path = Path(folder) / "x"
        write_idx(path, array)
        return path.read_bytes()


def load_mnist_from(root: Path) -> None:
    dataset, _ = outcome(
        lambda: load_dataset(
            "mnist", data_root=str(root), download=False, resolution=16, channels=1
        )
    )
    if dataset is not None:
        assert dataset.images.dtype == torch.uint8 and dataset.images.shape[1:] == (1, 16, 16)
        assert len(dataset.labels) == len(dataset)


@fuzz(60)
@given(
    n=st.integers(1, 6),
    seed=st.integers(0, 99),
    gz=st.booleans(),
    images_ops=st.none() | byte_ops(),
    labels_ops=st.none() | byte_ops(),
    after_gzip=st.booleans(),
)
def test_truncated_or_mutated_mnist_files(n, seed, gz, images_ops, labels_ops, after_gzip):
    images, labels = idx_pair(n, seed)
    with scratch() as folder:
        root = Path(folder)
        (root / "mnist").mkdir()
        for kind, array, ops in (
            ("images-idx3", images, images_ops),
            ("labels-idx1", labels, labels_ops),
        ):
            data = idx_bytes(array)
            if ops is not None and not (gz and after_gzip):
                data = mutate(data, ops, hot=16)
            if gz:
                data = gzip.compress(data, mtime=0)
                if ops is not None and after_gzip:
                    data = mutate(data, ops, hot=24)
            (root / "mnist" / f"train-{kind}-ubyte{'.gz' if gz else ''}").write_bytes(data)
        load_mnist_from(root)


IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
LABEL_VALUES = st.sampled_from(
    [0, 1, 9, 10, 255, -1, -128, 2**31 - 1, math.nan, math.inf, -math.inf, 0.5, 1e30]
)


def idx_file(draw, codes: st.SearchStrategy, shapes: st.SearchStrategy) -> bytes:
    """A well-formed IDX file (its header matches its payload) with hostile contents."""
    code, shape = draw(codes), draw(shapes)
    count = int(np.prod(shape, dtype=np.int64))
    dtype = np.dtype(IDX_DTYPES[code])
    values = draw(st.lists(LABEL_VALUES, min_size=count, max_size=count))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype.kind == "f":
            array = np.array(values, dtype=np.float64).astype(dtype)
        else:
            finite = [int(v) if math.isfinite(v) else 0 for v in values]
            info = np.iinfo(dtype)
            array = np.array([min(max(v, info.min), info.max) for v in finite], dtype=dtype)
    header = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    return header + array.reshape(shape).tobytes()


@st.composite
def idx_pairs(draw) -> tuple[bytes, bytes]:
    """An images file and a labels file, mostly the right kinds (uint8 (n, H, W) and (n,)) so
    that the checks after parsing are reached, with hostile dtypes, shapes and label values."""
    n = draw(st.integers(0, 3))
    images = idx_file(
        draw,
        st.just(0x08) | st.sampled_from(IDX_CODES),
        st.tuples(st.just(n), st.sampled_from([28, 1, 0, 3]), st.sampled_from([28, 1, 0, 40]))
        | st.lists(st.integers(0, 9), max_size=4).map(tuple),
    )
    labels = idx_file(
        draw,
        st.sampled_from(IDX_CODES),
        st.just((n,)) | st.lists(st.integers(0, 4), max_size=2).map(tuple),
    )
    return images, labels


def idx(code: int, shape: tuple, values: list) -> bytes:
    """An IDX file, written out by hand for the @examples."""
    array = np.array(values, dtype=np.dtype(IDX_DTYPES[code])).reshape(shape)
    return (
        bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + array.tobytes()
    )


@fuzz(80)
@given(pair=idx_pairs(), gz=st.booleans())
@example(  # ValueError: cannot convert float NaN to integer (labels.max() of float labels)
    pair=(idx(0x08, (1, 28, 28), [0] * 784), idx(0x0D, (1,), [math.nan])), gz=False
)
@example(  # OverflowError: cannot convert float infinity to integer
    pair=(idx(0x08, (1, 28, 28), [0] * 784), idx(0x0D, (1,), [math.inf])), gz=False
)
@example(  # RuntimeError from F.interpolate: images 28 pixels wide by 0 high
    pair=(idx(0x08, (1, 28, 0), []), idx(0x08, (1,), [0])), gz=False
)
def test_hostile_but_well_formed_mnist_files(pair, gz):
    images, labels = pair
    with scratch() as folder:
        root = Path(folder)
        (root / "mnist").mkdir()
        for kind, data in (("images-idx3", images), ("labels-idx1", labels)):
            suffix = ".gz" if gz else ""
            data = gzip.compress(data, mtime=0) if gz else data
            (root / "mnist" / f"train-{kind}-ubyte{suffix}").write_bytes(data)
        load_mnist_from(root)


def cifar_records(n: int, label_bytes: int, num_classes: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, (n, 1), dtype=np.uint8)
    head = np.concatenate([labels // 5, labels], axis=1) if label_bytes == 2 else labels
    return np.concatenate([head, rng.integers(0, 256, (n, 3072), dtype=np.uint8)], 1).tobytes()


CIFAR_LAYOUTS = {
    "cifar10": ("cifar-10-binary.tar.gz", "cifar-10-batches-bin"),
    "cifar100": ("cifar-100-binary.tar.gz", "cifar-100-binary"),
}


def cifar_members(variant: str) -> dict[str, bytes]:
    if variant == "cifar10":
        members = {f"data_batch_{i}.bin": cifar_records(1, 1, 10, i) for i in range(1, 6)}
        members["batches.meta.txt"] = "\n".join(CIFAR10_CLASSES).encode()
        return members
    names = "".join(f"fine{i}\n" for i in range(100)).encode()
    return {"train.bin": cifar_records(2, 2, 100, 0), "fine_label_names.txt": names}


def tar_bytes(top: str, members: dict[str, bytes], compress: bool) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@fuzz(60)
@given(
    variant=st.sampled_from(["cifar10", "cifar100"]),
    layout=st.sampled_from(["tar.gz", "tar", "folder"]),
    member=st.integers(0, 5),
    member_ops=st.none() | byte_ops(),
    archive_ops=st.none() | byte_ops(),
)
@example(  # a GanforgeError over 5 lines: tarfile's "r:*" lists why each compression failed
    variant="cifar10", layout="tar.gz", member=0, member_ops=None, archive_ops=[("empty",)]
)
@example(  # UnicodeDecodeError: the class-names file is not UTF-8
    variant="cifar10",
    layout="folder",
    member=0,
    member_ops=[("overwrite", 0, True, b"\xff")],
    archive_ops=None,
)
def test_truncated_or_mutated_cifar_files(variant, layout, member, member_ops, archive_ops):
    archive_name, top = CIFAR_LAYOUTS[variant]
    members = cifar_members(variant)
    name = sorted(members)[member % len(members)]
    if member_ops is not None:
        members[name] = mutate(members[name], member_ops, hot=4)
    with scratch() as folder:
        root = Path(folder)
        (root / variant).mkdir()
        if layout == "folder":
            (root / variant / top).mkdir()
            for member_name, data in members.items():
                (root / variant / top / member_name).write_bytes(data)
        else:
            data = tar_bytes(top, members, compress=layout == "tar.gz")
            if archive_ops is not None:
                data = mutate(data, archive_ops, hot=1024)
            (root / variant / archive_name).write_bytes(data)
        dataset, _ = outcome(
            lambda: load_dataset(
                variant, data_root=str(root), download=False, resolution=16, channels=1
            )
        )
        if dataset is not None:
            assert dataset.images.shape[1:] == (1, 16, 16) and len(dataset.labels) == len(dataset)


# ---- never code execution: pickles are not read --------------------------------------------


class Payload:
    """Unpickling this creates the folder `marker`: proof that a pickle was read."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("target", ["cifar-archive", "cifar-folder", "checkpoint", "config"])
def test_pickles_are_never_unpickled(tmp_path, target):
    marker = tmp_path / "pickle-ran"
    evil = pickle.dumps({b"data": Payload(marker), b"labels": [0]})
    if target.startswith("cifar"):
        folder = tmp_path / "root" / "cifar10"
        folder.mkdir(parents=True)
        members = {
            name: evil
            for name in [
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "batches.meta",
            ]
        }
        if target == "cifar-archive":
            (folder / "cifar-10-python.tar.gz").write_bytes(
                tar_bytes("cifar-10-batches-py", members, compress=True)
            )
        else:
            (folder / "cifar-10-batches-py").mkdir()
            for name, data in members.items():
                (folder / "cifar-10-batches-py" / name).write_bytes(data)

        def call():
            return load_dataset("cifar10", data_root=str(tmp_path / "root"), download=False)
    elif target == "checkpoint":
        path = tmp_path / "step_0000001.safetensors"
        torch.save({"weights": Payload(marker)}, path)  # a pickle-based torch file

        def call():
            return load_checkpoint(path)
    else:
        path = tmp_path / "config.json"
        path.write_bytes(evil)

        def call():
            return TrainConfig.from_dict(load_config_file(path))

    _, error = outcome(call)
    assert error is not None
    assert not marker.exists(), "a pickle was unpickled"

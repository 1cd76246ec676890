"""Checkpoints: safetensors without pickle, atomic writes, pruning, optimiser/RNG round trips,
and clear errors for files that are not ganforge checkpoints."""

from __future__ import annotations

import json
import math
import pickle
import shutil
import warnings

import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file
from torch import nn

import ganforge
from ganforge import GanforgeError, checkpoint_file
from ganforge.cli import main
from ganforge.training import checkpoint as ckpt


def make_optimizer(name: str, params):
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-2, betas=(0.5, 0.99))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=1e-2, momentum=0.5)
    return torch.optim.SGD(params, lr=1e-2, momentum=0.5)


def train_a_little(network, optimizer, steps=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        optimizer.zero_grad()
        network(torch.randn(4, 3, generator=generator)).pow(2).mean().backward()
        optimizer.step()


# ---- the files a run writes -----------------------------------------------------------------


def test_run_checkpoints_are_plain_safetensors(trained_run):
    assert trained_run.checkpoints
    for step, path in trained_run.checkpoints:
        assert path.name == checkpoint_file.checkpoint_name(step) == f"step_{step:07d}.safetensors"
        data = path.read_bytes()
        assert not data.startswith(b"\x80")  # not a pickle stream
        assert not data.startswith(b"PK")  # not a torch.save zip archive
        tensors = safetensors.torch.load_file(str(path))
        assert any(k.startswith("networks.generator.") for k in tensors)
        assert any(k.startswith("networks.discriminator.") for k in tensors)
        assert any(k.startswith("optimizers.") for k in tensors)
        assert "rng.torch" in tensors


def test_loading_never_unpickles(trained_run, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling during checkpoint load")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    tensors, metadata = ckpt.load_checkpoint(trained_run.checkpoints[-1][1])
    assert metadata["step"] == trained_run.step
    assert metadata["format"] == checkpoint_file.FORMAT
    assert metadata["config_hash"] == trained_run.config.trajectory_hash()
    family = ganforge.load_run(trained_run.path).load()
    assert set(family.networks) >= {"generator", "discriminator"}


def test_checkpoint_metadata_is_json_in_the_header(trained_run):
    path = trained_run.checkpoints[-1][1]
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
    metadata = json.loads(header["__metadata__"]["ganforge"])
    assert metadata["step"] == trained_run.step
    assert set(metadata["optimizers"]) == {"generator", "discriminator"}
    assert set(metadata["data_position"]) == {"epoch", "batch"}


def test_only_the_newest_checkpoints_are_kept_and_no_temp_files_remain(tiny_train):
    run = tiny_train(steps=10, checkpoint_every=2, keep_checkpoints=2)
    assert [step for step, _ in run.checkpoints] == [8, 10]
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == [
        "step_0000008.safetensors",
        "step_0000010.safetensors",
    ]
    assert not [p for p in run.path.rglob("*") if p.name.endswith(".tmp")]


# ---- save / load / list / prune ---------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    tensors = {
        "a": torch.arange(6.0).view(2, 3),
        "b": torch.tensor([1, 2], dtype=torch.int64),
        "scalar": torch.tensor(3.5),
    }
    path = tmp_path / "sub" / "c.safetensors"
    ckpt.save_checkpoint(path, tensors, {"step": 4, "nested": {"x": [1, 2]}})
    loaded, metadata = ckpt.load_checkpoint(path)
    assert set(loaded) == set(tensors)
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    expected = {"format": checkpoint_file.FORMAT, "step": 4, "nested": {"x": [1, 2]}}
    assert metadata == {**expected, "sha256": checkpoint_file.checkpoint_digest(tensors, expected)}
    assert [p.name for p in path.parent.iterdir()] == ["c.safetensors"]


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "step_0000001.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.ones(3)}, {"step": 1})
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", crash)
    with pytest.raises(GanforgeError, match="disk full; the previous checkpoints are kept"):
        ckpt.save_checkpoint(path, {"w": torch.zeros(3)}, {"step": 1})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_list_and_prune_checkpoints(tmp_path):
    for step in (100, 5, 20, 1000):
        ckpt.save_checkpoint(
            tmp_path / checkpoint_file.checkpoint_name(step), {"x": torch.zeros(1)}, {}
        )
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "step_12.safetensors.bak").write_text("x")
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [5, 20, 100, 1000]
    ckpt.prune_checkpoints(tmp_path, keep=2)
    assert [step for step, _ in ckpt.list_checkpoints(tmp_path)] == [100, 1000]
    assert (tmp_path / "notes.txt").exists()
    assert ckpt.list_checkpoints(tmp_path / "missing") == []


# ---- packing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_optimizer_state_round_trips_through_a_file(tmp_path, name):
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    optimizer = make_optimizer(name, network.parameters())
    train_a_little(network, optimizer)

    tensors, meta = ckpt.pack_optimizer("optimizers.g", optimizer)
    assert tensors  # moments are stored as tensors
    tensors.update(checkpoint_file.pack_module("networks.g", network))
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, tensors, {"optimizer": meta})
    loaded, metadata = ckpt.load_checkpoint(path)

    torch.manual_seed(1)  # different initial weights, overwritten by the checkpoint
    copy = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    copy_optimizer = make_optimizer(name, copy.parameters())
    checkpoint_file.unpack_module("networks.g", copy, loaded)
    ckpt.unpack_optimizer("optimizers.g", copy_optimizer, loaded, metadata["optimizer"])

    original_state, restored_state = optimizer.state_dict(), copy_optimizer.state_dict()
    assert original_state["param_groups"] == restored_state["param_groups"]
    assert original_state["state"].keys() == restored_state["state"].keys()
    for index, entries in original_state["state"].items():
        assert entries.keys() == restored_state["state"][index].keys()
        for key, value in entries.items():
            restored = restored_state["state"][index][key]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(restored))

    # and they keep training identically
    train_a_little(network, optimizer, seed=5)
    train_a_little(copy, copy_optimizer, seed=5)
    for a, b in zip(network.parameters(), copy.parameters(), strict=True):
        assert torch.equal(a, b)


def test_unpack_module_rejects_a_mismatched_network():
    small = nn.Linear(3, 2)
    tensors = checkpoint_file.pack_module("networks.generator", small)
    assert set(tensors) == {"networks.generator.weight", "networks.generator.bias"}
    other = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(GanforgeError, match="network 'networks.generator'"):
        checkpoint_file.unpack_module("networks.generator", other, tensors)


def test_rng_round_trip():
    tensors = ckpt.pack_rng()
    expected = torch.rand(5)
    torch.rand(100)  # move the generator on
    ckpt.unpack_rng(tensors)
    assert torch.equal(torch.rand(5), expected)


# ---- corrupt and foreign files ------------------------------------------------------------------


def test_garbage_file_error_names_the_file(tmp_path):
    path = tmp_path / "step_0000001.safetensors"
    path.write_bytes(b"\x00\x01 definitely not safetensors" * 10)
    with pytest.raises(GanforgeError) as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    for path in (empty, tmp_path / "absent.safetensors"):
        with pytest.raises(GanforgeError) as info:
            ckpt.load_checkpoint(path)
        assert str(path) in str(info.value)


def test_truncated_checkpoint(trained_run, tmp_path):
    data = trained_run.checkpoints[-1][1].read_bytes()
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GanforgeError) as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_pickled_torch_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.ones(2)}, path)
    with pytest.raises(GanforgeError) as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_foreign_safetensors_file_is_not_a_ganforge_checkpoint(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(GanforgeError, match="not a ganforge checkpoint") as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)
    safetensors.torch.save_file(
        {"w": torch.ones(2)}, str(path), metadata={"ganforge": json.dumps({"format": "other/9"})}
    )
    with pytest.raises(GanforgeError, match="unsupported checkpoint format") as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_sampling_a_corrupt_checkpoint_via_cli(trained_run, tmp_path, capsys):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"corrupt")
    code = main(
        [
            "sample",
            str(trained_run.path),
            "--checkpoint",
            str(path),
            "--out",
            str(tmp_path / "x.png"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: ") and str(path) in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def _flip_one_tensor_byte(path):
    """Damage the data section (not the header), which safetensors alone would not notice."""
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_tensor_byte_fails_the_checksum(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.arange(16, dtype=torch.float32)}, {"step": 1})
    _flip_one_tensor_byte(path)
    with pytest.raises(GanforgeError, match="damaged: it fails its checksum") as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_resume_skips_a_damaged_newest_checkpoint(tiny_train, without_wall_clock):
    straight = tiny_train("straight", steps=8, checkpoint_every=2, keep_checkpoints=5)
    run = tiny_train("damaged", steps=6, checkpoint_every=2, keep_checkpoints=5)
    _flip_one_tensor_byte(run.checkpoints[-1][1])  # step 6 is damaged: resume from step 4
    with pytest.warns(UserWarning, match="step_0000006"):
        resumed = ganforge.train(resume=run.path, steps=8)
    a, b = load_file(str(straight.checkpoints[-1][1])), load_file(str(resumed.checkpoints[-1][1]))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert without_wall_clock(resumed.metrics()) == without_wall_clock(straight.metrics())


def test_no_valid_checkpoint_is_a_clear_error(tiny_train):
    run = tiny_train(steps=2, checkpoint_every=2)
    _flip_one_tensor_byte(run.checkpoints[-1][1])
    with pytest.warns(UserWarning), pytest.raises(GanforgeError, match="no valid checkpoint"):
        ganforge.train(resume=run.path, steps=4)


def test_edited_metadata_fails_the_checksum(tmp_path):
    """The JSON in the header is covered too: a changed step is damage, not a new truth."""
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.ones(4)}, {"step": 10})
    data = path.read_bytes()
    assert data.count(b'"step\\": 10') == 1
    path.write_bytes(data.replace(b'"step\\": 10', b'"step\\": 99'))
    with pytest.raises(GanforgeError, match="fails its checksum"):
        ckpt.load_checkpoint(path)


# ---- tampered checkpoints: whole files (a recomputed checksum) holding wrong metadata ----------


def _tamper(path, edit_metadata=None, edit_tensors=None):
    """Rewrite a checkpoint as someone who edits it and recomputes its checksum would."""
    tensors, metadata = ckpt.load_checkpoint(path)
    metadata = {k: v for k, v in metadata.items() if k not in ("format", "sha256")}
    if edit_metadata is not None:
        edit_metadata(metadata)
    if edit_tensors is not None:
        edit_tensors(tensors)
    ckpt.save_checkpoint(path, tensors, metadata)


@pytest.fixture
def one_checkpoint_run(trained_run, tmp_path):
    """A copy of the shared finished run that keeps only its newest checkpoint."""
    path = shutil.copytree(trained_run.path, tmp_path / "run")
    for _, older in ganforge.load_run(path).checkpoints[:-1]:
        older.unlink()
    return ganforge.load_run(path)


def _set(*keys, value=None, delete=False):
    def edit(metadata):
        *parents, last = keys
        for key in parents:
            metadata = metadata[key]
        if delete:
            del metadata[last]
        else:
            metadata[last] = value

    return edit


BAD_METADATA = [
    (_set("step", delete=True), "lacks step"),
    (_set("step", value=None), "step must be a whole number"),
    (_set("step", value=4.0), "step must be a whole number"),
    (_set("step", value=-1), "step must be a whole number"),
    (_set("step", value=math.nan), "step must be a whole number"),
    (_set("step", value=-math.inf), "step must be a whole number"),
    (_set("step", value=10**30), "step must be a whole number"),
    (_set("step", value=True), "step must be a whole number"),
    (_set("config_hash", value=7), "config_hash must be text"),
    (_set("optimizers", value=None), "optimizers must be an object"),
    (_set("optimizers", value={}), "lacks optimizers."),
    (_set("optimizers", "generator", "param_groups", value=None), "param_groups must be a list"),
    (_set("optimizers", "generator", "param_groups", value=[]), "0 parameter groups"),
    (_set("optimizers", "generator", "plain_state", delete=True), "lacks optimizers.generator"),
    (_set("optimizers", "generator", "plain_state", value={"x": {}}), "keyed by an index"),
    (_set("optimizers", "generator", "plain_state", value={"99": {}}), "names no parameter"),
    (lambda m: m["optimizers"]["generator"]["param_groups"][0].update(lr=math.nan), ".lr must"),
    (lambda m: m["optimizers"]["generator"]["param_groups"][0].update(betas=[2, 0]), "betas"),
    (lambda m: m["optimizers"]["generator"]["param_groups"][0].update(params=[0]), "parameters"),
    (lambda m: m["optimizers"]["generator"]["param_groups"][0].update(amsgrad=1.5), "amsgrad"),
    (lambda m: m["optimizers"]["generator"]["param_groups"][0].update(eps=3e38), ".eps must"),
    (lambda m: m["optimizers"]["generator"]["param_groups"][0].update(foreach=1e7), "foreach"),
    (_set("data_position", value=[0, 0]), "data_position must be an object"),
    (_set("data_position", "epoch", value=1.5), "data_position.epoch must be a whole number"),
    (_set("data_position", "batch", value=math.inf), "data_position.batch must be a whole"),
    (_set("data_position", "epoch", value=2**64), "data_position.epoch must be a whole number"),
    (_set("logbook", value=None), "logbook must be an object"),
    (_set("logbook", "counts", value={"loss_d": 0}), "logbook.counts.loss_d must be a count"),
    (_set("logbook", "counts", value={"loss_d": 2}), "pending sums"),
    (_set("logbook", "images", value="many"), "logbook.images must be a whole number"),
    (_set("evaluation", value={"key": "x"}), "evaluation must be an object"),
]


@pytest.mark.parametrize(("edit", "words"), BAD_METADATA)
def test_resume_validates_the_metadata_of_a_checksummed_checkpoint(
    one_checkpoint_run, tree_snapshot, edit, words
):
    path = one_checkpoint_run.checkpoints[-1][1]
    _tamper(path, edit)
    before = tree_snapshot(one_checkpoint_run.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "skipping checkpoint ...": then no valid one is left
        with pytest.raises(GanforgeError) as info:
            ganforge.train(resume=one_checkpoint_run.path, steps=20)
    message = str(info.value)
    assert str(path) in message and words in message, message
    assert tree_snapshot(one_checkpoint_run.path) == before  # metrics.jsonl and all kept


def _replace_tensor(name, value):
    def edit(tensors):
        tensors[name] = value(tensors[name]) if callable(value) else value

    return edit


BAD_TENSORS = [
    (_replace_tensor("rng.torch", torch.zeros(5056, dtype=torch.uint8)), "random generator"),
    (lambda t: t.pop("rng.torch"), "random generator"),
    (_replace_tensor("optimizers.generator.state.0.exp_avg", torch.zeros(3)), "does not fit"),
    (_replace_tensor("optimizers.generator.state.0.step", torch.zeros(2)), "does not fit"),
    (_replace_tensor("optimizers.generator.state.x.exp_avg", torch.zeros(1)), "names no param"),
    (_replace_tensor("optimizers.generator.state.99.exp_avg", torch.zeros(1)), "names no param"),
    (_replace_tensor("networks.generator.net.0.weight", torch.zeros(1)), "does not match"),
    (lambda t: t.pop("optimizers.generator.state.1.exp_avg_sq"), "differ in kind"),
]


@pytest.mark.parametrize(("edit", "words"), BAD_TENSORS)
def test_resume_checks_that_a_checkpoints_tensors_fit_the_run(
    one_checkpoint_run, tree_snapshot, edit, words
):
    path = one_checkpoint_run.checkpoints[-1][1]
    _tamper(path, edit_tensors=edit)
    before = tree_snapshot(one_checkpoint_run.path)
    with pytest.raises(GanforgeError) as info:
        ganforge.train(resume=one_checkpoint_run.path, steps=20)
    message = str(info.value)
    assert message.startswith("--resume: ") and str(path) in message and words in message, message
    assert tree_snapshot(one_checkpoint_run.path) == before


def test_resume_checks_the_logbooks_pending_sums(one_checkpoint_run):
    path = one_checkpoint_run.checkpoints[-1][1]
    _tamper(
        path,
        _set("logbook", "counts", value={"loss_d": 2}),
        _replace_tensor("logbook.loss_d", torch.zeros(2)),
    )
    with pytest.raises(GanforgeError, match="tensor 'logbook.loss_d' is not one number"):
        ganforge.train(resume=one_checkpoint_run.path, steps=20)


def test_resume_skips_a_tampered_newest_checkpoint_for_an_older_valid_one(trained_run, tmp_path):
    run = ganforge.load_run(shutil.copytree(trained_run.path, tmp_path / "run"))
    (older_step, _), (_, newest) = run.checkpoints
    _tamper(newest, _set("optimizers", value=None))
    with pytest.warns(UserWarning, match="optimizers must be an object"):
        resumed = ganforge.train(resume=run.path, steps=trained_run.step + 2)
    assert resumed.step == trained_run.step + 2
    assert [r["step"] for r in resumed.metrics()][-1] == trained_run.step + 2


@pytest.mark.parametrize("step", [math.nan, math.inf, "4", 2.5])
def test_loading_any_checkpoint_checks_the_fields_it_holds(tmp_path, step):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.ones(2)}, {"step": step})
    with pytest.raises(GanforgeError, match="is invalid: step must be a whole number") as info:
        ckpt.load_checkpoint(path)
    assert str(path) in str(info.value)

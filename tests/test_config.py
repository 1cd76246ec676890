"""TrainConfig: conversion, validation with flag-naming errors, hashing, config files."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from ganforge import GanforgeError, TrainConfig
from ganforge.config import (
    MAX_LEARNING_RATE,
    RESUMABLE_OPTIONS,
    flag_name,
    load_config_file,
)
from ganforge.config.files import _ConfigLoader


def test_defaults_are_valid():
    config = TrainConfig()
    config.validate()
    assert config.model in ("dcgan", "mlp")


def test_from_dict_accepts_dashes_and_underscores():
    config = TrainConfig.from_dict({"lr-g": 1e-3, "batch_size": 8, "d-steps": 2})
    assert config.lr_g == 1e-3
    assert config.batch_size == 8
    assert config.d_steps == 2


def test_from_dict_rejects_unknown_key_naming_it_and_the_source():
    with pytest.raises(GanforgeError) as info:
        TrainConfig.from_dict({"steps": 3, "learning_rate": 0.1}, source="my.toml")
    message = str(info.value)
    assert "learning_rate" in message
    assert "my.toml" in message


def test_ints_are_coerced_to_floats_for_float_options():
    config = TrainConfig.from_dict({"lr_g": 1, "label_smoothing": 0})
    assert isinstance(config.lr_g, float) and config.lr_g == 1.0
    assert isinstance(config.label_smoothing, float)


def test_round_trip_through_json():
    config = TrainConfig(model="mlp", data="digits", steps=7, lr_d=3e-4, resolution=28)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lr_g", -1e-4),
        ("lr_d", 0.0),
        ("steps", 0),
        ("batch_size", 0),
        ("d_steps", 0),
        ("z_dim", -3),
        ("width", 0),
        ("keep_checkpoints", 0),
        ("log_every", 0),
        ("beta1", 1.0),
        ("beta2", -0.1),
        ("ema_decay", 1.5),
        ("label_smoothing", 0.5),
        ("optimizer", "adagrad"),
        ("g_loss", "minimax"),
        ("channels", 2),
        ("resolution", 2),
        ("data_cache", "ram"),
        ("data_workers", -1),
        ("strict", "yes"),
        ("seed", -1),
        # wrong types, as a JSON/TOML file could give them
        ("steps", "10"),
        ("steps", 2.5),
        ("steps", True),
        ("lr_g", "fast"),
        ("progress", "yes"),
        ("model", 3),
    ],
)
def test_invalid_option_error_names_the_flag(option, value):
    with pytest.raises(GanforgeError) as info:
        TrainConfig.from_dict({option: value})
    assert str(info.value).startswith(flag_name(option) + ":"), str(info.value)


def test_negative_lr_message_shows_the_value():
    with pytest.raises(GanforgeError, match=r"^--lr-g: .*-0\.5"):
        TrainConfig(lr_g=-0.5).validate()


def test_choice_errors_list_the_valid_choices():
    with pytest.raises(GanforgeError) as info:
        TrainConfig(optimizer="adagrad").validate()
    for name in ("adam", "rmsprop", "sgd"):
        assert name in str(info.value)


def test_replace_validates():
    with pytest.raises(GanforgeError, match="^--batch-size"):
        TrainConfig().replace(batch_size=-1)
    assert TrainConfig().replace(batch_size=3).batch_size == 3


def test_flag_name():
    assert flag_name("lr_g") == "--lr-g"
    assert flag_name("trust_pickle") == "--trust-pickle"


@pytest.mark.parametrize("option", sorted(RESUMABLE_OPTIONS | {"out"}))
def test_trajectory_hash_ignores_resumable_options_and_the_run_folder(option):
    base = TrainConfig(eval_every=5)  # so that --early-stop-patience may be set
    value = getattr(base, option)
    if isinstance(value, bool):
        changed = not value
    elif isinstance(value, float) and 0 < value <= 1:  # a fraction (doctor thresholds)
        changed = value / 2
    elif isinstance(value, (int, float)):
        changed = value + 7
    else:
        changed = {
            "device": "cpu",
            "data_cache": "stream",
            "eval_metric": "kid",
            "precision": "bf16",
            "doctor_warmup": 20,  # None by default: 500 steps, or a fifth of the run
        }.get(
            option, "elsewhere"
        )
    assert base.replace(**{option: changed}).trajectory_hash() == base.trajectory_hash()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lr_g", 1e-3),
        ("seed", 1),
        ("model", "mlp"),
        ("d_steps", 2),
        ("g_loss", "saturating"),
        ("data", "digits"),
        ("width", 32),
        ("ema_decay", 0.0),
        ("loss", "hinge"),
        ("gp", 10.0),
        ("r1", 1.0),
        ("spectral_norm", True),
        ("instance_noise", 0.1),
        ("diffaugment", "cutout"),
    ],
)
def test_trajectory_hash_changes_with_trajectory_options(option, value):
    base = TrainConfig()
    assert base.replace(**{option: value}).trajectory_hash() != base.trajectory_hash()


def test_options_added_later_leave_the_hash_of_existing_runs_alone():
    """Runs made before an option existed carry these hashes in their checkpoints: an option
    added since, at its default, must not change them (or the runs could not resume)."""
    assert TrainConfig().trajectory_hash() == "221d7a5fec54ccdc"
    tiny = TrainConfig(model="mlp", data="digits", width=8, batch_size=16, z_dim=8)
    assert tiny.replace(resolution=28, channels=1).trajectory_hash() == "835772930585712a"
    # ... while a run that uses one is told apart from one that does not, both ways round
    assert tiny.replace(gp=1.0).trajectory_hash() != tiny.replace(gp=2.0).trajectory_hash()
    assert tiny.replace(gp=1.0).replace(gp=0.0).trajectory_hash() == tiny.trajectory_hash()


def test_every_field_has_help_text():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name


# ---- config files ----------------------------------------------------------------------


def test_load_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('model = "mlp"\nsteps = 12\nlr-g = 1e-3\nprogress = false\n')
    values = load_config_file(path)
    assert values == {"model": "mlp", "steps": 12, "lr_g": 1e-3, "progress": False}
    config = TrainConfig.from_dict(values)
    assert (config.model, config.steps, config.lr_g, config.progress) == ("mlp", 12, 1e-3, False)


def test_load_json_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"data": "digits", "batch_size": 8}))
    assert load_config_file(path) == {"data": "digits", "batch_size": 8}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("run.ini", "steps = 3\n"),
        ("run.toml", "steps = = 3\n"),
        ("run.json", "{not json"),
        ("run.json", "[1, 2, 3]"),
    ],
)
def test_bad_config_files_name_the_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GanforgeError) as info:
        load_config_file(path)
    message = str(info.value)
    assert message.startswith("--config:")
    assert str(path) in message


def test_missing_config_file(tmp_path):
    with pytest.raises(GanforgeError, match="^--config: no such file"):
        load_config_file(tmp_path / "absent.toml")


def test_an_unknown_key_suggests_the_closest_option():
    with pytest.raises(GanforgeError, match=r"unknown option 'lr_gen'; did you mean 'lr-g'\?"):
        TrainConfig.from_dict({"lr_gen": 1e-3})


def test_load_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: mlp\nsteps: 12\nlr-g: 0.001\nprogress: false\n")
    assert load_config_file(path) == {"model": "mlp", "steps": 12, "lr_g": 1e-3, "progress": False}


@pytest.mark.parametrize(
    ("suffix", "text", "line"),
    [
        (".yaml", "model: mlp\nsteps: [1,\n  2\nlr_g: 3\n", 4),
        (".toml", 'model = "mlp"\nsteps = = 3\n', 2),
        (".json", '{"model": "mlp",\n "steps": }', 2),
    ],
)
def test_a_syntax_error_names_the_file_and_line(tmp_path, suffix, text, line):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(GanforgeError, match=rf"line {line}") as info:
        load_config_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_yaml_cannot_build_python_objects(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("model: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(GanforgeError, match="cannot parse"):
        load_config_file(path)


def test_non_text_option_names_are_refused(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text("1: 2\n")
    with pytest.raises(GanforgeError, match="option names must be text"):
        load_config_file(path)


FLOAT_OPTIONS = [f.name for f in dataclasses.fields(TrainConfig) if str(f.type) == "float"]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("option", FLOAT_OPTIONS)
def test_non_finite_numbers_are_refused_for_every_float_option(option, value):
    assert {"lr_g", "lr_d", "checkpoint_minutes"} <= set(FLOAT_OPTIONS)
    with pytest.raises(GanforgeError, match=rf"^{flag_name(option)}: .*{value}"):
        TrainConfig.from_dict({option: value})


def test_a_config_with_an_infinite_learning_rate_is_refused(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("lr-g = inf\n")
    with pytest.raises(GanforgeError, match="^--lr-g: must be a finite number, got inf"):
        TrainConfig.from_dict(load_config_file(path))


def test_yaml_aliases_are_refused_naming_the_file_and_line(tmp_path, monkeypatch):
    """A "billion laughs": nine lines of nested aliases make 10^9 leaves."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    path = tmp_path / "lol.yaml"
    path.write_text("\n".join(lines) + "\nmodel: *a9\n")
    composed = []  # the loader's work, counted: it stops at the first alias
    compose_node = _ConfigLoader.compose_node
    monkeypatch.setattr(
        _ConfigLoader,
        "compose_node",
        lambda self, *a: composed.append(1) or compose_node(self, *a),
    )
    with pytest.raises(GanforgeError, match=r"\(line 2\): aliases \(\*name\) are not allowed") as i:
        load_config_file(path)
    assert str(path) in str(i.value)
    assert len(composed) == 15  # the mapping, key a0, its list and 9 items, key a1, its list, *a0


class _CountedLeaf:
    """A leaf that counts how often an error message's repr visits it."""

    visits = 0

    def __repr__(self) -> str:
        _CountedLeaf.visits += 1
        return "leaf"


def test_a_wrong_type_error_quotes_a_huge_value_briefly():
    counted = [_CountedLeaf()] * 9
    for _ in range(3):
        counted = [counted] * 9  # 9^4 leaf visits for a full repr: a brief one makes few
    _CountedLeaf.visits = 0
    with pytest.raises(GanforgeError, match="^--steps: expected an integer, got "):
        TrainConfig.from_dict({"steps": counted})
    assert _CountedLeaf.visits <= 4**2  # reprlib: 4 items on each of 2 levels at most
    bomb = ["x"] * 9
    for _ in range(9):
        bomb = [bomb] * 9  # 10^9 leaves, all shared: a full repr would never finish
    for value in (bomb, "9" * 10**6, {"k": bomb}):
        with pytest.raises(GanforgeError, match="^--steps: expected an integer, got ") as info:
            TrainConfig.from_dict({"steps": value})
        assert len(str(info.value)) < 300


@pytest.mark.parametrize("option", ["lr_g", "lr_d"])
def test_a_learning_rate_that_would_overflow_a_step_is_refused(option):
    """torch's Adam step overflows float32 near lr 1e38 (a RuntimeError mid-training)."""
    TrainConfig.from_dict({option: MAX_LEARNING_RATE})
    with pytest.raises(GanforgeError, match=rf"^{flag_name(option)}: .*at most 1000, got 1e\+39"):
        TrainConfig.from_dict({option: 1e39})

"""The config in sections, and each model's own options (declared in its file): taken only by
that model, saved flat with the run, read back from runs written before they existed; the
course's architecture exercises as options; models from a user's own module (--plugin)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import ganforge
from cli_errors import assert_one_line_error
from ganforge.cli import build_parser, main
from ganforge.config import SECTIONS, TrainConfig, shared_option_names
from ganforge.errors import GanforgeError
from ganforge.models import build_model, describe_model, list_models
from tiny import TINY_OPTIONS

MODEL_ONLY = {"cond", "aux_weight", "aux_fakes", "l1_weight", "norm", "recon", "beta"}


def test_every_shared_option_is_in_exactly_one_section():
    names = [f.name for _, section in SECTIONS for f in dataclasses.fields(section)]
    assert len(names) == len(set(names))
    assert set(names) == set(shared_option_names())
    assert not MODEL_ONLY & set(names)  # single models' options live in their own files


@pytest.mark.parametrize(
    ("model", "option", "value"),
    [("vae", "beta", 2.0), ("pix2pix", "l1_weight", 7.0), ("acgan", "aux_fakes", True)],
)
def test_a_model_takes_its_own_options_and_refuses_anothers(model, option, value):
    config = TrainConfig.from_dict({"model": model, option: value})
    assert getattr(config.model_options, option) == value
    assert config.to_dict()[option] == value  # config.json stays flat
    with pytest.raises(GanforgeError, match=f"^--{option.replace('_', '-')}: an option of {model}"):
        TrainConfig.from_dict({"model": "dcgan", option: value})


def test_anothers_options_at_their_defaults_are_dropped_as_an_old_config_json_held_them():
    config = TrainConfig.from_dict(
        {"model": "dcgan", "beta": 1.0, "norm": "batch", "cond": "concat"}
    )
    assert config.to_dict().keys() >= {"g_activation", "extra_layers"}
    assert not MODEL_ONLY & set(config.to_dict())


def test_a_model_option_on_the_command_line_for_another_model_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "dcgan", "--beta", "2", "--out", str(out)]) == 2
    assert_one_line_error(capsys, "--beta", "vae", "dcgan")
    assert not out.exists()


def test_train_help_groups_the_flags_by_section():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    titles = [group.title for group in train._action_groups]
    for title, _ in SECTIONS:
        assert f"{title} options" in titles
    own = next(g for g in train._action_groups if g.title == "each model's own options")
    flags = {a.option_strings[0] for a in own._group_actions}
    assert {"--beta", "--l1-weight", "--cond", "--g-layers", "--extra-layers"} <= flags


def _modules(network: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in network.modules())


def test_mlp_architecture_options_shape_its_networks():
    """The course's exercise, without code: a deeper G, other activations, batchnorm."""
    config = TrainConfig.from_dict(
        {
            "model": "mlp",
            "g_layers": "16,32,64,64",
            "d_layers": "24",
            "g_activation": "relu",
            "g_norm": "batch",
            "d_activation": "elu",
            "z_dim": 8,
        }
    )
    family = build_model(config, 8, 1)
    generator, discriminator = family.networks["generator"], family.networks["discriminator"]
    widths = [m.out_features for m in generator.modules() if isinstance(m, nn.Linear)]
    assert widths == [16, 32, 64, 64, 64]  # four hidden layers, then the 8x8 image
    assert _modules(generator, nn.ReLU) == 4 and _modules(generator, nn.BatchNorm1d) == 4
    assert [m.out_features for m in discriminator.modules() if isinstance(m, nn.Linear)] == [24, 1]
    assert _modules(discriminator, nn.ELU) == 1 and _modules(discriminator, nn.LeakyReLU) == 0
    assert generator(torch.randn(3, 8)).shape == (3, 1, 8, 8)


def test_the_default_architectures_are_the_papers():
    mlp = build_model(TrainConfig.from_dict({"model": "mlp", "width": 8}), 8, 1).networks
    assert [m.out_features for m in mlp["generator"].modules() if isinstance(m, nn.Linear)] == [
        32,
        64,
        128,
        64,
    ]
    dcgan = build_model(TrainConfig.from_dict({"model": "dcgan", "width": 8}), 28, 1).networks
    assert (
        _modules(dcgan["generator"], nn.ReLU) == 2
        and _modules(dcgan["generator"], nn.BatchNorm2d) == 2
    )
    assert _modules(dcgan["discriminator"], nn.LeakyReLU) == 2


def test_dcgan_architecture_options_shape_its_generator():
    config = TrainConfig.from_dict(
        {"model": "dcgan", "width": 8, "extra_layers": 2, "g_norm": "none", "g_activation": "silu"}
    )
    generator = build_model(config, 28, 1).networks["generator"]
    assert _modules(generator, nn.Conv2d) == 2  # the extra 3x3 layers (transposed ones aside)
    assert _modules(generator, nn.BatchNorm2d) == 0 and _modules(generator, nn.SiLU) == 4
    assert generator(torch.randn(2, 100)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--model", "mlp", "--g-layers", "32,x"], ["--g-layers", "32,x"]),
        (["--model", "mlp", "--g-layers", "0,8"], ["--g-layers", "at least 1"]),
        (["--model", "mlp", "--g-activation", "swish"], ["--g-activation", "relu"]),
        (["--model", "dcgan", "--g-norm", "layer"], ["--g-norm", "instance"]),
        (["--model", "dcgan", "--extra-layers", "99"], ["--extra-layers", "16"]),
        (["--model", "acgan", "--aux-weight", "0"], ["--aux-weight", "cgan"]),
    ],
)
def test_bad_architecture_options_are_one_line_errors(tmp_path, capsys, flags, words):
    out = tmp_path / "run"
    assert main(["train", *flags, "--data", "digits", "--steps", "1", "--out", str(out)]) == 2
    assert_one_line_error(capsys, *words)


def test_an_architecture_is_saved_with_the_run_and_reopened(tmp_path):
    run = ganforge.train(
        **{**TINY_OPTIONS, "steps": 2},
        g_layers="16,16",
        g_activation="tanh",
        out=str(tmp_path / "r"),
    )
    saved = json.loads((run.path / "config.json").read_text())
    assert saved["g_layers"] == "16,16" and saved["g_activation"] == "tanh"
    generator = ganforge.load_run(run.path).load().networks["generator"]
    assert _modules(generator, nn.Tanh) == 3  # two hidden layers and the output
    assert ganforge.load_run(run.path).sample(4).shape == (4, 28, 28, 1)  # digits at 28 px


def test_acgans_class_head_is_read_as_such_whatever_its_weight():
    """The D of acgan holds the real/fake logit in column 0 and class logits after it; that is
    the architecture, not a consequence of a positive --aux-weight."""
    from ganforge.models.gan import GANFamily

    config = TrainConfig.from_dict({"model": "acgan", "num_classes": 3, "width": 8, "z_dim": 8})
    family = build_model(config, 28, 1)
    assert isinstance(family, GANFamily) and family.class_head
    family.aux_weight = 0.0
    real_fake, classes = family.critic(torch.zeros(2, 1, 28, 28))
    assert real_fake.shape == (2,) and classes.shape == (2, 3)


PLUGIN = '''
    """A user's model, in their own module."""
    from ganforge.models import register_model
    from ganforge.models.mlp import MLPOptions, build_mlp

    register_model("my-tiny-gan", build_mlp, options=MLPOptions)
'''


def test_a_plugin_model_trains_and_is_reopened_by_the_tools(tmp_path):
    (tmp_path / "my_gans.py").write_text(textwrap.dedent(PLUGIN))
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"

    elsewhere = tmp_path / "elsewhere"  # `python -m` would find a module in its own folder
    elsewhere.mkdir()

    def ganforge_cli(*args, env=env):
        command = [sys.executable, "-m", "ganforge", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, cwd=elsewhere)

    trained = ganforge_cli(
        "train",
        "--plugin",
        "my_gans",
        "--model",
        "my-tiny-gan",
        "--data",
        "digits",
        "--steps",
        "2",
        "--width",
        "8",
        "--z-dim",
        "8",
        "--batch-size",
        "16",
        "--no-progress",
        "--out",
        str(run),
    )
    assert trained.returncode == 0, trained.stderr
    assert json.loads((run / "config.json").read_text())["plugin"] == "my_gans"
    sampled = ganforge_cli("sample", str(run), "--n", "4", "--out", str(tmp_path / "s.png"))
    assert sampled.returncode == 0, sampled.stderr
    reported = ganforge_cli("report", str(run))
    assert reported.returncode == 0, reported.stderr
    # without the module, one line that names it (not "unknown model")
    missing = ganforge_cli(
        "sample", str(run), "--out", str(tmp_path / "t.png"), env={**env, "PYTHONPATH": ""}
    )
    assert missing.returncode == 2
    assert "my_gans" in missing.stderr and missing.stderr.count("\n") == 1
    assert "my-tiny-gan" not in list_models()  # this process never imported it


def test_a_plugin_is_a_module_name_never_a_path(capsys, tmp_path):
    assert main(["train", "--plugin", "../evil.py", "--out", str(tmp_path / "r")]) == 2
    assert_one_line_error(capsys, "--plugin", "module name")


def test_describing_a_model_allocates_nothing():
    family = describe_model(
        TrainConfig.from_dict({"model": "dcgan", "resolution": 28, "channels": 1})
    )
    assert all(p.device.type == "meta" for p in family.networks.parameters())

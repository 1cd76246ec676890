"""The fast paths (training/fast_paths.py): which one a device gets, and that each computes
the same training (fused optimisers, channels-last, --compile, --precision, no host reads in
a step). The GPU paths cannot run here: their decisions are tested on device types."""

from __future__ import annotations

import contextlib
import math
import warnings

import pytest
import torch
from torch import nn

import ganforge
from ganforge import checkpoint_file
from ganforge.errors import GanforgeError
from ganforge.models.gan import GAN_PHASES
from ganforge.training import checkpoint as ckpt
from ganforge.training import fast_paths
from ganforge.training.doctor import Doctor
from ganforge.training.logbook import Logbook

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_the_fastest_optimizer_implementation_per_device():
    assert fast_paths.optimizer_options(torch.optim.Adam, CPU) == {"fused": True}
    assert fast_paths.optimizer_options(torch.optim.Adam, CUDA) == {"fused": True}
    assert fast_paths.optimizer_options(torch.optim.SGD, CUDA) == {"fused": True}
    assert fast_paths.optimizer_options(torch.optim.SGD, CPU) == {"foreach": True}
    assert fast_paths.optimizer_options(torch.optim.RMSprop, CUDA) == {"foreach": True}


def test_an_optimizer_without_the_fused_kernel_falls_back_to_foreach(monkeypatch):
    params = [nn.Parameter(torch.ones(2))]
    assert fast_paths.fastest(torch.optim.Adam, params, lr=0.1).defaults["fused"] is True
    monkeypatch.setattr(fast_paths, "optimizer_options", lambda *_: {"fused": True})
    optimizer = fast_paths.fastest(torch.optim.RMSprop, params, lr=0.1)  # RMSprop has none
    assert optimizer.defaults["foreach"] is True


def test_cpu_threads_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert fast_paths.cpu_threads(1, cores=8) == 8
    assert fast_paths.cpu_threads(2, cores=8) == 4
    assert fast_paths.cpu_threads(4, cores=2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # torchrun's, or the user's: it wins
    assert fast_paths.cpu_threads(2, cores=8) == 3


def test_channels_last_for_convolutions_on_cuda_and_onednn_cpus(monkeypatch):
    conv, dense = nn.Sequential(nn.Conv2d(2, 2, 3)), nn.Sequential(nn.Linear(2, 2))
    assert fast_paths.wants_channels_last([dense, conv], CUDA)
    assert not fast_paths.wants_channels_last([dense], CUDA)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    assert fast_paths.wants_channels_last([conv], CPU)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not fast_paths.wants_channels_last([conv], CPU)
    fast_paths.to_channels_last([conv, dense])
    assert conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv[0].weight.is_contiguous()
    batch = fast_paths.channels_last_batch(
        {"images": torch.zeros(2, 3, 4, 4), "labels": torch.zeros(2)}
    )
    assert batch["images"].is_contiguous(memory_format=torch.channels_last)


def test_cudnn_autotuning_is_switched_on_for_cuda_only(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    fast_paths.configure_backends(CPU)
    assert torch.backends.cudnn.benchmark is False
    fast_paths.configure_backends(CUDA)
    assert torch.backends.cudnn.benchmark is True


def _conv_and_adam(state: dict | None = None) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 3))
    fast_paths.to_channels_last([network])
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1, fused=True)
    return network, optimizer


def _adam_step(network: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    images = torch.randn(4, 2, 6, 6, generator=torch.Generator().manual_seed(seed))
    optimizer.zero_grad(set_to_none=True)
    network(images.contiguous(memory_format=torch.channels_last)).square().mean().backward()
    optimizer.step()


def test_resumed_fused_adam_of_a_channels_last_network_is_exact():
    """A checkpoint's state tensors are contiguous; the fused Adam kernel reads them in the
    parameters' memory order: unpacking lays them out as the parameters are."""
    straight, straight_adam = _conv_and_adam()
    resumed, resumed_adam = _conv_and_adam()
    for seed in range(2):
        _adam_step(straight, straight_adam, seed)
        _adam_step(resumed, resumed_adam, seed)
    tensors, meta = ckpt.pack_optimizer("optimizers.d", resumed_adam)
    modules = checkpoint_file.pack_module("networks.d", resumed)
    resumed, resumed_adam = _conv_and_adam()
    checkpoint_file.unpack_module(
        "networks.d", resumed, {k: v.contiguous() for k, v in modules.items()}
    )
    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    ckpt.unpack_optimizer("optimizers.d", resumed_adam, contiguous, meta)
    for seed in range(2, 4):
        _adam_step(straight, straight_adam, seed)
        _adam_step(resumed, resumed_adam, seed)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_the_optimizer_implementation_is_the_live_one_not_the_checkpoints():
    network = nn.Linear(3, 2)
    saved = torch.optim.Adam(network.parameters(), lr=0.1, fused=True)
    network(torch.ones(1, 3)).sum().backward()
    saved.step()
    tensors, meta = ckpt.pack_optimizer("optimizers.g", saved)
    live = torch.optim.Adam(network.parameters(), lr=0.5, foreach=True)
    ckpt.unpack_optimizer("optimizers.g", live, tensors, meta)
    group = live.param_groups[0]
    assert group["lr"] == 0.1  # the run's settings come back...
    assert group["foreach"] is True and not group["fused"]  # ...its kernels are this device's


def test_phases_call_stand_ins_and_the_networks_come_back():
    networks = nn.ModuleDict({"generator": nn.Linear(2, 2), "discriminator": nn.Linear(2, 1)})
    plain = networks["generator"]
    stand_in = nn.Identity()
    with pytest.raises(RuntimeError, match="inside"):
        with fast_paths.substituted(networks, {"generator": stand_in}):
            assert networks["generator"] is stand_in
            raise RuntimeError("inside")
    assert networks["generator"] is plain
    assert list(networks.state_dict()) == list(nn.ModuleDict(dict(networks)).state_dict())


# ---- --precision ---------------------------------------------------------------------------


def test_fp16_on_a_cpu_is_a_one_line_error(tiny_train, tmp_path):
    """README: "fp16 on a CPU is an error" — one line, no warning, no run folder."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning on the way (a disabled scaler) fails
        with pytest.raises(GanforgeError) as error:
            tiny_train("fp16", precision="fp16", device="cpu")
    assert str(error.value) == (
        "--precision fp16: needs a CUDA device, not cpu (on CPU use bf16 or fp32)"
    )
    assert not (tmp_path / "fp16" / "config.json").exists()
    with pytest.raises(GanforgeError, match="--precision fp16: needs a CUDA device"):
        fast_paths.Precision("fp16", CPU, GAN_PHASES)
    with pytest.raises(GanforgeError, match="--precision: 'fp8' is not one of"):
        tiny_train(precision="fp8")


def test_fp16_on_cuda_has_one_gradient_scaler_per_phase():
    # without CUDA the scalers are built, disable themselves, and say so: that warning is
    # expected here, not hidden
    expected = (
        contextlib.nullcontext()
        if torch.cuda.is_available()
        else pytest.warns(UserWarning, match="CUDA is not available")
    )
    with expected:
        precision = fast_paths.Precision("fp16", CUDA, GAN_PHASES)
    assert set(precision.scalers) == {"discriminator", "generator"}
    assert precision.dtype is torch.float16
    stats = precision.float_stats({"loss_d": torch.tensor(1.0, dtype=torch.float16)})
    assert stats["loss_d"].dtype is torch.float32
    plain = fast_paths.Precision("fp32", CUDA, GAN_PHASES)
    assert plain.scalers == {} and plain.state_dict() == {}


def test_checkpoints_hold_valid_scaler_states_only(tmp_path):
    scaler = {
        "scale": 65536.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 2000,
        "_growth_tracker": 7,
    }
    ckpt.check_metadata({"scalers": {"generator": scaler}}, tmp_path / "c")
    for bad in ({"generator": {**scaler, "scale": -1.0}}, {"generator": {}}, ["x"]):
        with pytest.raises(GanforgeError, match="scalers"):
            ckpt.check_metadata({"scalers": bad}, tmp_path / "c")


def test_bf16_autocast_trains_on_cpu(tiny_train):
    run = tiny_train(precision="bf16", steps=4)
    records = run.metrics()
    assert records and all(math.isfinite(r["loss_d"]) for r in records)
    assert run.config.precision == "bf16"


def test_a_bf16_step_on_cpu_is_close_to_the_fp32_step(tiny_train, without_wall_clock):
    """One step in bf16 autocast against the same step in fp32: finite, and the same update
    but for the few weights whose gradient is so small that bf16 rounding flips its sign
    (Adam's first step moves every weight by about --lr, either way)."""
    options = {"steps": 1, "device": "cpu"}
    runs = [tiny_train("fp32", **options), tiny_train("bf16", precision="bf16", **options)]
    fp32, bf16 = (_networks(run) for run in runs)
    assert fp32.keys() == bf16.keys()
    differences = torch.cat([(fp32[k] - bf16[k]).abs().flatten() for k in fp32])
    assert torch.isfinite(differences).all()
    lr = max(runs[0].config.lr_g, runs[0].config.lr_d)
    assert differences.max() <= 2 * lr * 1.001  # each run moved each weight by lr at most
    assert (differences > 1e-5).float().mean() < 0.02  # nearly all weights: the same update
    records = [without_wall_clock(run.metrics())[-1] for run in runs]
    assert records[0].keys() == records[1].keys()
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        assert records[1][key] == pytest.approx(records[0][key], rel=1e-2), key
    assert records[1] != records[0]  # bf16 did compute something of its own


def _networks(run: ganforge.Run) -> dict[str, torch.Tensor]:
    tensors, _ = ckpt.load_checkpoint(run.checkpoints[-1][1])
    return {k: v for k, v in tensors.items() if k.startswith("networks.")}


# ---- no host reads in a step ---------------------------------------------------------------


def test_a_step_between_records_reads_nothing_back_from_the_device(
    tmp_path, tiny_options, monkeypatch
):
    """Every host read (item, tolist, float(), bool() of a tensor) waits for a GPU: between
    records the loop makes none (on CPU the same calls show where a GPU would wait)."""
    from ganforge.config import TrainConfig
    from ganforge.training.loop import Trainer

    options = {**tiny_options, "model": "dcgan", "resolution": 16, "log_every": 100}
    trainer = Trainer(TrainConfig(**options, out=None), tmp_path / "run", resuming=False)
    trainer.step()  # the first step builds the optimisers' state (and the doctor's snapshot)
    reads = []
    for method in ("item", "tolist", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, method)

        def spy(self, *args, _original=original, _name=method):
            reads.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, method, spy)
    assert torch.ones(()).item() == 1.0 and reads == ["item"]  # the spies see host reads
    reads.clear()
    for _ in range(3):
        trainer.step()
    monkeypatch.undo()
    assert reads == []


# ---- --compile -----------------------------------------------------------------------------


def test_an_unusable_torch_compile_is_one_line(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found\nlong traceback")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(GanforgeError) as error:
        fast_paths.compiled_networks(nn.ModuleDict({"generator": nn.Linear(1, 1)}))
    assert str(error.value).startswith("--compile: torch.compile does not work here")
    assert "\n" not in str(error.value)


def _compile_runs() -> str | None:
    """Why torch.compile cannot run here (None: it can)."""
    try:
        fast_paths.compiled_networks(nn.ModuleDict())
    except GanforgeError as exc:
        return str(exc)
    return None


@pytest.mark.slow  # compiling the networks' steps takes a minute or two on a 2-core CPU
def test_compile_computes_the_eager_steps_and_its_checkpoint_loads_uncompiled(tiny_train):
    reason = _compile_runs()
    if reason is not None:
        pytest.skip(reason)
    options = {"steps": 3, "device": "cpu"}
    eager = tiny_train("eager", **options)
    run = tiny_train("compiled", compile=True, **options)
    # the same seeded steps, to float rounding: networks, EMA, optimiser state, records
    tensors, _ = ckpt.load_checkpoint(run.checkpoints[-1][1])
    reference, _ = ckpt.load_checkpoint(eager.checkpoints[-1][1])
    assert tensors.keys() == reference.keys()
    for name in reference:
        if name.startswith(("networks.", "optimizers.")):
            torch.testing.assert_close(tensors[name], reference[name], rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(run.metrics(), eager.metrics(), strict=True):
        for key in ("loss_d", "loss_g", "d_real", "d_fake", "grad_norm_generator"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    assert not any("_orig_mod" in name for name in tensors)
    family = ganforge.load_run(run.path).load()  # plain networks, as ganforge.sample uses
    assert not any("_orig_mod" in name for name in family.networks.state_dict())
    assert run.sample(4, seed=0).shape[0] == 4


# ---- data-parallel hooks of the logbook and the doctor -------------------------------------------


def test_a_logbook_without_a_path_writes_nothing_and_reduces_its_sums(tmp_path):
    halves = Logbook(None, reduce=lambda sums: {k: v / 2 for k, v in sums.items()})
    halves.add({"loss_d": torch.tensor(3.0)})
    tensors, _ = halves.pack_pending()
    assert tensors["logbook.loss_d"].item() == 1.5
    assert halves.flush(1, {})["loss_d"] == 1.5
    halves.append({"step": 1})
    assert list(tmp_path.iterdir()) == []


def test_every_process_finds_the_problem_one_process_saw(digits, tmp_path):
    from ganforge.config import TrainConfig
    from ganforge.models import build_model

    config = TrainConfig(model="mlp", width=8, z_dim=8)
    family = build_model(config, 8, 1)
    doctor = Doctor(config, family, digits, None, CPU)
    doctor.watch("generator", torch.tensor(1.0), step=7)
    # another process saw a NaN generator loss at step 7: the minimum over processes says so
    other = torch.tensor([7.0, 1.0, 1.0], dtype=torch.float64)
    problem = doctor.check(family.networks, minimum=lambda mine: torch.minimum(mine, other))
    assert problem == "the generator loss was NaN or infinite at step 7"
    assert doctor.check(family.networks) is None
    doctor.events.write(None)  # no events file for a process other than rank 0: nothing to write
    assert list(tmp_path.iterdir()) == []

"""--reuse-fakes: G's phase learns from the very fakes D's last step was shown (their noise, G's
graph recorded in D's phase), sparing one forward pass of G, and nothing of them outlives the
iteration (a resumed run stays exact: tests/training/test_resume.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge import GanforgeError
from ganforge.training.loop import Trainer, new_config
from tiny import TINY_OPTIONS


def trainer(tmp_path, **options) -> Trainer:
    config = new_config(None, {**TINY_OPTIONS, "model": "dcgan", "ema_decay": 0.0, **options})
    return Trainer(config, tmp_path / "run", resuming=False)


class Watched:
    """G's forward passes and D's inputs over one iteration, and G's gradient at its update."""

    def __init__(self, trainer: Trainer):
        family = trainer.family
        self.g_inputs: list[torch.Tensor] = []
        self.d_inputs: list[torch.Tensor] = []
        self.g_grads: list[torch.Tensor] = []
        self.handles = [
            family.networks["generator"].register_forward_hook(
                lambda _m, args, _out: self.g_inputs.append(args[0].detach().clone())
            ),
            family.networks["discriminator"].register_forward_hook(
                lambda _m, args, _out: self.d_inputs.append(args[0].detach().clone())
            ),
        ]
        self.g_graded_in_d_phase = False
        g_step = trainer.optimizers["generator"].step
        d_step = trainer.optimizers["discriminator"].step

        def watched_g_step(*args, **kwargs):
            self.g_grads = [p.grad.detach().clone() for p in family.generator.parameters()]
            return g_step(*args, **kwargs)

        def watched_d_step(*args, **kwargs):  # D's loss must not reach back into G
            grads = (p.grad for p in family.generator.parameters())
            self.g_graded_in_d_phase |= any(g is not None for g in grads)
            return d_step(*args, **kwargs)

        trainer.optimizers["generator"].step = watched_g_step
        trainer.optimizers["discriminator"].step = watched_d_step

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def one_iteration(trainer: Trainer) -> tuple[Watched, dict]:
    """Run one iteration; what was watched, and G before it (G does not move in D's phase)."""
    g_before = copy.deepcopy(trainer.family.generator.state_dict())
    watched = Watched(trainer)
    trainer.step()
    watched.remove()
    return watched, g_before


def reference_gradient(trainer: Trainer, g_before: dict, z: torch.Tensor) -> list[torch.Tensor]:
    """G's gradient of its loss for noise `z` against D as it is after its step: computed
    here from scratch, on copies (train mode: batch statistics, as in training)."""
    family = trainer.family
    generator = copy.deepcopy(family.generator)
    generator.load_state_dict(g_before)
    discriminator = copy.deepcopy(family.discriminator)
    discriminator.requires_grad_(False)
    generator.zero_grad(set_to_none=True)
    family.g_loss(discriminator(generator(z))).backward()
    return [p.grad for p in generator.parameters()]


@pytest.mark.parametrize("reuse", [True, False])
def test_g_learns_from_the_fakes_d_was_shown(tmp_path, reuse):
    run = trainer(tmp_path, reuse_fakes=reuse)
    watched, g_before = one_iteration(run)
    # D's phase: G on its noise, D on the real batch and on the fakes; then G's phase
    z_d = watched.g_inputs[0]
    fakes_shown_to_d = watched.d_inputs[1]
    assert len(watched.g_inputs) == (1 if reuse else 2)
    assert torch.equal(watched.d_inputs[-1], fakes_shown_to_d) == reuse
    expected = reference_gradient(run, g_before, z_d)
    close = all(
        torch.allclose(got, want, atol=1e-6, rtol=1e-4)
        for got, want in zip(watched.g_grads, expected)
    )
    assert close == reuse  # fresh noise gives another gradient: the comparison can tell
    assert not watched.g_graded_in_d_phase
    assert len(run.family.kept_fakes or ()) == 0  # nothing kept past the iteration
    run.close()


def test_with_accumulated_batches_and_several_d_steps_each_batch_gets_its_own(tmp_path):
    """d_steps 2 x accumulate 2: four draws of G in D's phase, none in G's, and each of G's
    batches learns from the fakes drawn for that batch in D's last step."""
    run = trainer(tmp_path, reuse_fakes=True, d_steps=2, accumulate=2)
    watched, g_before = one_iteration(run)
    assert len(watched.g_inputs) == 4
    # D: (real, fake) per batch for 4 batches; G: a fake per batch of the last step
    shown = [watched.d_inputs[i] for i in (5, 7)]
    assert all(torch.equal(a, b) for a, b in zip(watched.d_inputs[8:], shown))
    assert len(watched.d_inputs) == 10
    assert len(run.family.kept_fakes) == 0
    run.close()


def test_pix2pix_draws_once_per_iteration(tmp_path):
    config = {
        "model": "pix2pix",
        "data": "mnist-mini-edges",
        "resolution": 32,
        "batch_size": 4,
        "width": 4,
    }
    counts = {}
    for reuse in (False, True):
        run = trainer(tmp_path / str(reuse), reuse_fakes=reuse, **config)
        watched, _ = one_iteration(run)
        counts[reuse] = len(watched.g_inputs)
        run.close()
    assert counts == {False: 2, True: 1}


def test_cyclegan_draws_both_translations_once(tmp_path, model_options):
    """D's phase translates each side once; G's phase reuses both and still runs the cycle
    and identity passes: 8 generator passes an iteration without the flag, 6 with it."""
    counts = {}
    for reuse in (False, True):
        options = {**model_options("cyclegan"), "model": "cyclegan", "batch_size": 4}
        run = trainer(tmp_path / str(reuse), reuse_fakes=reuse, **options)
        generators = run.family.networks["generator"]
        passes = []
        handles = [
            getattr(generators, side).register_forward_hook(lambda *_, seen=passes: seen.append(1))
            for side in ("ab", "ba")
        ]
        run.step()
        for handle in handles:
            handle.remove()
        counts[reuse] = len(passes)
        assert len(run.family.kept_fakes or ()) == 0
        run.close()
    assert counts == {False: 8, True: 6}


def test_cyclegan_resumes_exactly_with_it(tiny_train, model_options):
    options = {**model_options("cyclegan"), "model": "cyclegan", "reuse_fakes": True}
    straight = tiny_train("straight", steps=6, **options)
    split = tiny_train("split", steps=3, **options)
    resumed = ganforge.train(resume=split.path, steps=6)
    a, b = (load_file(str(r.checkpoints[-1][1])) for r in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model", ["vae"])
def test_a_family_whose_phases_share_no_fakes_refuses_it(tmp_path, model, model_options):
    with pytest.raises(GanforgeError, match=r"^--reuse-fakes: .*do not share"):
        ganforge.train(
            **{**TINY_OPTIONS, **model_options(model), "model": model, "steps": 1},
            out=str(tmp_path / "run"),
            reuse_fakes=True,
        )
    assert not (tmp_path / "run").exists()


def test_refused_with_ddp_and_on_resume(tiny_train):
    with pytest.raises(GanforgeError, match=r"^--reuse-fakes: not with --ddp"):
        ganforge.TrainConfig(reuse_fakes=True, ddp=True).validate()
    run = tiny_train("run", steps=2)
    with pytest.raises(GanforgeError, match=r"^--reuse-fakes: cannot change on --resume"):
        ganforge.train(resume=run.path, steps=4, reuse_fakes=True)
    assert run.step == 2


def test_it_is_another_run(tiny_train):
    plain = tiny_train("plain", model="dcgan")
    reused = tiny_train("reused", model="dcgan", reuse_fakes=True)
    assert plain.config.trajectory_hash() != reused.config.trajectory_hash()
    assert not np.array_equal(plain.sample(4, seed=0), reused.sample(4, seed=0))


@pytest.mark.parametrize("model", ["mlp", "cgan", "acgan", "infogan", "r3gan"])
def test_every_model_with_d_and_g_phases_draws_once(tmp_path, model):
    run = trainer(tmp_path, model=model, reuse_fakes=True, d_steps=1)
    watched, _ = one_iteration(run)
    assert len(watched.g_inputs) == 1
    assert all(g.abs().sum() > 0 for g in watched.g_grads[:1])  # G learned through the graph
    run.close()

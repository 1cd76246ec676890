"""The textbook tricks of issue 18 inside a GAN family and the loop: experience replay, ADA,
WGAN's weight clipping, R2 and lazy regularisation, gradient accumulation. Each against what
the trick is defined to do (closed forms, hand-built pools), not against its own output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ganforge
from ganforge import GanforgeError, TrainConfig
from ganforge.data import to_model_range
from ganforge.models import GANFamily, build_model
from ganforge.models.ada import ADJUST_EVERY, AdaptiveAugment, with_probability, xflip
from ganforge.models.gan import Remedies
from ganforge.models.replay import ReplayPool

# ---- experience replay -------------------------------------------------------------------


def numbered(start: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n one-pixel "images" whose value is their number, labelled number % 10."""
    values = torch.arange(start, start + n, dtype=torch.float32)
    return values.view(n, 1, 1, 1), (values % 10).long()


def test_replay_shows_d_the_new_fakes_until_the_pool_has_any():
    pool = ReplayPool(10)
    fakes, labels = numbered(0, 4)
    mixed, mixed_labels = pool.mix(fakes, labels)
    assert torch.equal(mixed, fakes) and torch.equal(mixed_labels, labels)
    assert len(pool) == 4 and torch.equal(pool.images, fakes)


def test_replay_mixes_half_earlier_fakes_with_their_own_labels():
    torch.manual_seed(0)
    pool = ReplayPool(6)
    for start in (0, 100):  # 8 fakes into a pool of 6: it fills, then 2 replace random ones
        pool.mix(*numbered(start, 4))
    assert len(pool) == 6
    before = set(pool.images.flatten().tolist())
    assert before <= {0, 1, 2, 3, 100, 101, 102, 103} and len(before & {100, 101, 102, 103}) >= 2
    mixed, labels = pool.mix(*numbered(200, 4))
    values = mixed.flatten().tolist()
    assert set(values[:2]) <= before  # the first half: earlier fakes from the pool
    assert values[2:] == [202, 203]  # the second half: this step's
    assert labels.tolist() == [int(v) % 10 for v in values]  # each with the label it was made for


def test_replay_pool_state_round_trips_and_refuses_an_oversized_pool():
    pool = ReplayPool(4)
    pool.mix(*numbered(0, 4))
    tensors = pool.state_tensors()
    restored = ReplayPool(4)
    restored.load_state_tensors(tensors, "cpu")
    assert torch.equal(restored.images, pool.images) and torch.equal(restored.labels, pool.labels)
    restored.images[0] = -1  # the pool is changed in place: the checkpoint's tensor is not
    assert tensors["replay.images"][0].item() == 0
    with pytest.raises(GanforgeError, match="more than --replay 2"):
        ReplayPool(2).load_state_tensors(tensors, "cpu")


def test_the_d_phase_judges_the_replayed_fakes(digits):
    torch.manual_seed(0)
    family = build_model(TrainConfig(model="mlp", width=8, z_dim=8, replay=64), 28, 1)
    seen = []
    family.discriminator.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    batch = {"images": to_model_range(digits.images[:8]), "labels": digits.labels[:8]}
    family.phase_loss("discriminator", batch)
    first_fakes = seen[1]
    family.phase_loss("discriminator", batch)
    replayed = seen[3][:4]  # the second step's first half: rows of the first step's fakes
    for row in replayed:
        assert any(torch.equal(row, old) for old in first_fakes)
    assert not any(torch.equal(seen[3][-1], old) for old in first_fakes)


# ---- ADA ----------------------------------------------------------------------------------


def test_ada_moves_p_by_the_images_seen_over_its_speed_every_four_d_steps():
    ada = AdaptiveAugment(target=0.6, kimg=1.0)  # 1,000 images from p = 0 to 1
    says_real = torch.ones(10)
    for _ in range(ADJUST_EVERY - 1):
        ada.observe(says_real)
    assert ada.p == 0.0  # nothing between adjustments
    ada.observe(says_real)
    assert ada.p == pytest.approx(40 / 1000)  # r = 1 > 0.6: up by 4 x 10 images over 1,000
    unsure = torch.tensor([1.0, -1.0] * 5)  # r = 0 < 0.6: down again
    for _ in range(ADJUST_EVERY):
        ada.observe(unsure)
    assert ada.p == 0.0
    for _ in range(ADJUST_EVERY):  # and never below 0
        ada.observe(unsure)
    assert ada.p == 0.0
    fast = AdaptiveAugment(target=0.6, kimg=0.01)
    for _ in range(ADJUST_EVERY):
        fast.observe(says_real)
    assert fast.p == 1.0  # nor above 1


def test_ada_leaves_images_and_the_rng_alone_at_p_0_and_augments_a_share_p_of_them():
    images = torch.randn(400, 1, 8, 8)
    ada = AdaptiveAugment(target=0.6, kimg=1.0)
    state = torch.get_rng_state()
    assert ada.augment(images) is images
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(3)
    flipped = with_probability(xflip, images, 0.25)
    torch.manual_seed(3)
    chosen = torch.rand(400) < 0.25  # the same draws, one per image
    assert torch.equal(flipped[chosen], images[chosen].flip(-1))
    assert torch.equal(flipped[~chosen], images[~chosen])
    assert 60 < chosen.sum() < 140
    ada.p = 1.0
    assert not torch.equal(ada.augment(images), images)


def test_ada_state_is_checked_when_loaded():
    ada = AdaptiveAugment(0.6, 1.0)
    ada.load_state_dict({"p": 0.25, "signs": 3.0, "count": 10, "steps": 2})
    assert (ada.p, ada.signs, ada.count, ada.steps) == (0.25, 3.0, 10, 2)
    for bad in (
        {"p": 1.5, "signs": 0.0, "count": 0, "steps": 0},
        {"p": 0.1, "signs": 11.0, "count": 10, "steps": 1},
        {"p": 0.1, "signs": 0.0, "count": 10, "steps": ADJUST_EVERY},
        {"p": "0.1", "signs": 0.0, "count": 0, "steps": 0},
        [0.1],
    ):
        with pytest.raises(GanforgeError, match="ADA state"):
            ada.load_state_dict(bad)
    ada.load_state_dict(None)  # a fork of a run without --ada: from p = 0
    assert ada.p == 0.0


def test_ada_counts_the_sign_of_d_on_reals_and_logs_p(digits):
    family = build_model(TrainConfig(model="mlp", width=8, z_dim=8, ada=0.6), 28, 1)
    batch = {"images": to_model_range(digits.images[:8]), "labels": digits.labels[:8]}
    with torch.no_grad():
        family.discriminator.net[-1].bias.fill_(50.0)  # D says "real" to everything
    family.ada.kimg = 0.032  # one adjustment moves p by 4 x 8 / 32 = 1
    for _ in range(ADJUST_EVERY):
        _, stats = family.phase_loss("discriminator", batch)
    assert stats["ada_p"].item() == 0.0  # logged as it was during the step
    assert family.ada.p == 1.0
    _, stats = family.phase_loss("discriminator", batch)
    assert stats["ada_p"].item() == 1.0


# ---- WGAN weight clipping --------------------------------------------------------------------


def test_clip_weights_needs_the_wasserstein_loss():
    with pytest.raises(GanforgeError, match="--clip-weights.*--loss wasserstein"):
        TrainConfig(clip_weights=0.01).validate()


def test_clip_weights_clips_d_after_its_steps_and_never_g(tiny_train):
    run = tiny_train(loss="wasserstein", clip_weights=0.01, optimizer="rmsprop", steps=3)
    tensors = ganforge.Run(run.path).checkpoints[-1][1]
    from safetensors.torch import load_file

    weights = load_file(str(tensors))
    d = [t for k, t in weights.items() if k.startswith("networks.discriminator.")]
    g = [t for k, t in weights.items() if k.startswith("networks.generator.")]
    assert max(t.abs().max().item() for t in d) == pytest.approx(0.01)
    assert max(t.abs().max().item() for t in g) > 0.05


# ---- R2 and lazy regularisation ------------------------------------------------------------


class LinearD(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w for every image, so R1 = R2 = |w|^2."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 1)

    def forward(self, images):
        return self.linear(images.flatten(1)).view(-1)


def linear_family(**remedies) -> GANFamily:
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(4, 64), nn.Tanh(), nn.Unflatten(1, (1, 8, 8)))
    return GANFamily(generator, LinearD(), z_dim=4, remedies=Remedies(**remedies))


def test_r2_and_r1_are_gamma_over_2_times_the_squared_input_gradient():
    family = linear_family(r1=2.0, r2=6.0)
    batch = {"images": torch.rand(5, 1, 8, 8) * 2 - 1}
    norm = family.discriminator.linear.weight.pow(2).sum().item()
    loss, stats = family.phase_loss("discriminator", batch)
    assert stats["r1"].item() == pytest.approx(norm, rel=1e-5)
    assert stats["r2"].item() == pytest.approx(norm, rel=1e-5)
    assert loss.item() - stats["loss_d"].item() == pytest.approx((2.0 + 6.0) / 2 * norm, rel=1e-4)


def test_lazy_regularisation_adds_the_penalties_every_n_iterations_times_n():
    family = linear_family(r2=6.0, reg_every=4)
    norm = family.discriminator.linear.weight.pow(2).sum().item()
    batch = {"images": torch.rand(5, 1, 8, 8) * 2 - 1}
    added = []
    for step in range(8):
        family.set_progress(step, 8)
        loss, stats = family.phase_loss("discriminator", batch)
        added.append(round(loss.item() - stats["loss_d"].item(), 4))
        assert ("r2" in stats) == (step % 4 == 0)
    assert added == [round(4 * 6.0 / 2 * norm, 4), 0, 0, 0] * 2


def test_reg_every_and_ada_kimg_alone_are_refused():
    with pytest.raises(GanforgeError, match="--reg-every.*none of them is on"):
        TrainConfig(reg_every=16).validate()
    with pytest.raises(GanforgeError, match="--ada-kimg.*--ada TARGET"):
        TrainConfig(ada_kimg=50).validate()


# ---- gradient accumulation ---------------------------------------------------------------

BANK = torch.randn(4096, 8, generator=torch.Generator().manual_seed(0))


def banked_latent(self, n, generator=None, device="cpu"):
    """Noise rows taken in order from one fixed bank: N batches of n draw what one of N*n does
    (torch's own draws differ between one large and several small calls)."""
    if generator is not None:
        return torch.randn(n, self.z_dim, generator=generator, device=device)
    start = getattr(self, "_banked", 0)
    self._banked = start + n
    return BANK[start : start + n].to(device)


def test_accumulating_n_batches_is_the_update_of_one_n_times_larger_batch(tiny_train, monkeypatch):
    monkeypatch.setattr(GANFamily, "sample_latent", banked_latent)
    common = {"optimizer": "sgd", "steps": 3, "doctor": False, "ema_decay": 0.0, "d_steps": 2}
    large = tiny_train("large", batch_size=32, **common)
    accumulated = tiny_train("accumulated", batch_size=8, accumulate=4, **common)
    from safetensors.torch import load_file

    a = load_file(str(large.checkpoints[-1][1]))
    b = load_file(str(accumulated.checkpoints[-1][1]))
    networks = [k for k in a if k.startswith("networks.")]
    moved = [k for k in networks if not torch.equal(a[k], b[k])]
    assert moved  # float rounding differs: a sum of four means is not one mean
    for key in networks:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_reg_decay_lowers_the_penalties_by_a_cosine_to_their_final_share():
    family = linear_family(r1=4.0, reg_decay="cosine", reg_final=0.1)
    norm = family.discriminator.linear.weight.pow(2).sum().item()
    batch = {"images": torch.rand(5, 1, 8, 8) * 2 - 1}
    for step, share in ((0, 1.0), (50, 0.55), (100, 0.1)):  # 0.1 + 0.9 * (1 + cos(pi t)) / 2
        family.set_progress(step, 100)
        loss, stats = family.phase_loss("discriminator", batch)
        added = loss.item() - stats["loss_d"].item()
        assert added == pytest.approx(share * 4.0 / 2 * norm, rel=1e-4), step
    with pytest.raises(GanforgeError, match="--reg-decay.*none of them is on"):
        TrainConfig(reg_decay="cosine").validate()
    with pytest.raises(GanforgeError, match="--reg-final.*--reg-decay cosine"):
        TrainConfig(r1=1.0, reg_final=0.5).validate()

"""The remedies inside a model family: the losses it picks, spectral norm and batchnorm removal
on every discriminator, DiffAugment, and annealed instance noise on D's inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ganforge import GanforgeError, TrainConfig
from ganforge.config import DIFFAUGMENT_POLICIES, LOSSES, diffaugment_policies
from ganforge.data import to_model_range
from ganforge.models import build_model, list_models, model_kind
from ganforge.models.diffaugment import AUGMENTATIONS, color, cutout, diff_augment, translation

# GAN families: not translators (test_pix2pix.py), nor the VAE (no discriminator)
MODELS = [m for m in list_models() if not model_kind(m).translator and m != "vae"]


def tiny_family(model: str = "mlp", resolution: int = 28, **options):
    if model_kind(model).class_conditional:
        options.setdefault("num_classes", 10)
    config = TrainConfig(model=model, width=8, z_dim=8, **options)
    return build_model(config, resolution, 1)


def real_batch(digits, n: int = 8) -> dict:
    return {"images": to_model_range(digits.images[:n]), "labels": digits.labels[:n]}


def d_inputs(family) -> list[torch.Tensor]:
    """Record every input D receives from now on."""
    seen: list[torch.Tensor] = []
    family.networks["discriminator"].register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone())
    )
    return seen


# ---- losses ------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
def test_the_d_phase_minimises_the_chosen_loss_of_d_logits(loss, digits):
    torch.manual_seed(0)
    family = tiny_family(loss=loss, label_smoothing=0.1)
    batch = real_batch(digits)
    torch.manual_seed(1)
    value, stats = family.phase_loss("discriminator", batch)

    torch.manual_seed(1)
    fake = family.networks["generator"](family.sample_latent(8))
    discriminator = family.networks["discriminator"]
    real_logits, fake_logits = discriminator(batch["images"]), discriminator(fake)
    r, f = real_logits.double(), fake_logits.double()
    expected = {
        # real target 0.9: -(0.9 log σ(r) + 0.1 log(1 - σ(r))); fake target 0: -log(1 - σ(f))
        "bce": (-0.9 * F.logsigmoid(r) - 0.1 * F.logsigmoid(-r)).mean()
        - F.logsigmoid(-f).mean(),
        "hinge": torch.relu(1 - r).mean() + torch.relu(1 + f).mean(),
        "wasserstein": f.mean() - r.mean(),
        "least-squares": 0.5 * ((r - 0.9) ** 2).mean() + 0.5 * (f**2).mean(),
        # each real paired with the fake of the same index: -log σ(r_i - f_i)
        "relativistic": -F.logsigmoid(r - f).mean(),
        # each side against the other's mean
        "relativistic-average": -F.logsigmoid(r - f.mean()).mean()
        - F.logsigmoid(-(f - r.mean())).mean(),
    }[loss]
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["loss_d"].item() == pytest.approx(value.item())
    # d_real / d_fake are sigmoid means for every loss (of logits relative to the other
    # side's mean for the relativistic ones); raw critic scores only beyond bce
    if loss.startswith("relativistic"):
        r, f = r - f.mean(), f - r.mean()
    assert stats["d_real"].item() == pytest.approx(torch.sigmoid(r).mean().item(), rel=1e-5)
    assert stats["d_fake"].item() == pytest.approx(torch.sigmoid(f).mean().item(), rel=1e-5)
    accuracy = ((r > 0).double().mean() + (f < 0).double().mean()) / 2
    assert stats["d_accuracy"].item() == pytest.approx(accuracy.item())
    r, f = real_logits.double(), fake_logits.double()
    if loss == "bce":
        assert "d_real_logit" not in stats
    else:
        assert stats["d_real_logit"].item() == pytest.approx(r.mean().item(), rel=1e-5)
        assert stats["d_fake_logit"].item() == pytest.approx(f.mean().item(), rel=1e-5)


@pytest.mark.parametrize(
    ("loss", "g_loss"),
    [(loss, "non-saturating") for loss in LOSSES]
    + [("bce", "saturating"), ("hinge", "saturating")],
)
def test_the_g_phase_minimises_the_chosen_loss_of_d_logits(loss, g_loss, digits):
    torch.manual_seed(0)
    family = tiny_family(loss=loss, g_loss=g_loss)
    batch = real_batch(digits)
    torch.manual_seed(1)
    value, stats = family.phase_loss("generator", batch)

    torch.manual_seed(1)
    fake = family.networks["generator"](family.sample_latent(8))
    f = family.networks["discriminator"](fake).double()
    r = family.networks["discriminator"](batch["images"]).double()
    if loss == "bce":  # --g-loss: -log σ(f) (fakes labelled 1), or the minimax log(1 - σ(f))
        saturating = g_loss == "saturating"
        expected = F.logsigmoid(-f).mean() if saturating else -F.logsigmoid(f).mean()
    elif loss == "relativistic":  # the batch's reals and fakes paired, roles swapped
        expected = -F.logsigmoid(f - r).mean()
    elif loss == "relativistic-average":
        expected = -F.logsigmoid(f - r.mean()).mean() - F.logsigmoid(-(r - f.mean())).mean()
    else:  # the loss's own generator side; --g-loss does not apply
        expected = 0.5 * ((f - 1) ** 2).mean() if loss == "least-squares" else -f.mean()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["loss_g"].item() == pytest.approx(value.item())
    assert stats["d_fake_g"].item() == pytest.approx(torch.sigmoid(f).mean().item(), rel=1e-5)


def test_label_smoothing_moves_the_least_squares_target_not_the_hinge_margin():
    real, fake = torch.tensor([0.9]), torch.tensor([0.0])
    smoothed = tiny_family(loss="least-squares", label_smoothing=0.1)
    assert smoothed.d_loss(real, fake).item() == pytest.approx(0.0, abs=1e-7)
    hinge = tiny_family(loss="hinge", label_smoothing=0.1)
    assert hinge.d_loss(torch.tensor([1.0]), torch.tensor([-1.0])).item() == 0.0


def test_penalties_are_added_weighted_and_logged_unweighted(digits):
    torch.manual_seed(0)
    family = tiny_family(loss="wasserstein", gp=10.0, r1=4.0)
    value, stats = family.phase_loss("discriminator", real_batch(digits))
    assert stats["gp"].item() > 0 and stats["r1"].item() > 0
    expected = stats["loss_d"] + 10.0 * stats["gp"] + 4.0 / 2 * stats["r1"]
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()  # the penalties' double backward works through D
    assert all(p.grad is not None for p in family.networks["discriminator"].parameters())


def test_r1_leaves_the_shared_batch_alone(digits):
    """The G phase reuses D's batch: R1 must not switch on gradients for it."""
    family = tiny_family(r1=1.0)
    batch = real_batch(digits)
    family.phase_loss("discriminator", batch)
    assert not batch["images"].requires_grad


# ---- spectral norm and batchnorm ---------------------------------------------------------


def weighted_layers(network: nn.Module) -> list[nn.Module]:
    return [m for m in network.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


@pytest.mark.parametrize("model", MODELS)
def test_spectral_norm_gives_every_d_layer_unit_largest_singular_value(model):
    torch.manual_seed(0)
    family = tiny_family(model, spectral_norm=True)
    discriminator = family.networks["discriminator"]
    layers = weighted_layers(discriminator)
    assert layers and all(parametrize.is_parametrized(layer, "weight") for layer in layers)
    assert not any(parametrize.is_parametrized(m) for m in family.networks["generator"].modules())

    def largest_singular_values() -> list[float]:
        discriminator.eval()  # reading the weight in eval mode runs no power iteration
        weights = [layer.weight.detach().flatten(1) for layer in layers]  # normalised weights
        discriminator.train()
        return [torch.linalg.matrix_norm(w, ord=2).item() for w in weights]

    # At once roughly 1 (15 power iterations at construction; the estimate of the largest
    # singular value can only fall short, so the normalised one is >= 1)...
    assert all(1 - 1e-4 < sigma < 1.1 for sigma in largest_singular_values())
    labels = torch.arange(4) % 10 if family.kind.class_conditional else None
    for _ in range(200):  # ... and closer with the one power iteration of each training forward
        family.critic(torch.randn(4, 1, 28, 28), labels)
    for layer, sigma in zip(layers, largest_singular_values()):
        assert sigma == pytest.approx(1.0, abs=0.003), layer
        raw = layer.parametrizations.weight.original.detach()  # the trained parameter
        expected = raw / torch.linalg.matrix_norm(raw.flatten(1), ord=2)
        discriminator.eval()
        assert torch.allclose(layer.weight.detach(), expected, rtol=0.005, atol=1e-6)
        discriminator.train()


@pytest.mark.parametrize("options", [{"spectral_norm": True}, {"gp": 10.0}])
def test_spectral_norm_and_gp_drop_the_dcgan_discriminators_batchnorm(options):
    def batchnorms(network):
        return [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]

    plain = tiny_family("dcgan", 32)
    assert batchnorms(plain.networks["discriminator"])
    family = tiny_family("dcgan", 32, **options)
    assert not batchnorms(family.networks["discriminator"])
    assert batchnorms(family.networks["generator"])  # G keeps its own
    assert family.networks["discriminator"](torch.randn(3, 1, 32, 32)).shape == (3,)


# ---- DiffAugment -------------------------------------------------------------------------


def test_policy_names_agree_and_parse():
    assert tuple(AUGMENTATIONS) == DIFFAUGMENT_POLICIES
    assert diffaugment_policies("") == ()
    assert diffaugment_policies(" color , translation,") == ("color", "translation")
    assert diffaugment_policies("cutout,color") == ("cutout", "color")
    assert TrainConfig(diffaugment=" cutout, color").replace().diffaugment == "cutout,color"
    with pytest.raises(GanforgeError, match=r"^--diffaugment: unknown policy 'blur' \(color, "):
        diffaugment_policies("color,blur")
    with pytest.raises(GanforgeError, match="^--diffaugment: .*twice"):
        diffaugment_policies("color,color")


IMAGES_SHAPE = (6, 3, 16, 24)  # not square: catches swapped height and width


@pytest.mark.parametrize("policy", [*DIFFAUGMENT_POLICIES, "color,translation,cutout"])
def test_augmentations_keep_shape_and_are_differentiable(policy):
    torch.manual_seed(0)
    images = (torch.rand(IMAGES_SHAPE) * 2 - 1).requires_grad_(True)
    out = diff_augment(images, diffaugment_policies(policy))
    assert out.shape == images.shape and out.dtype == images.dtype
    assert not torch.equal(out, images)
    out.pow(2).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_off_is_the_identity():
    images = torch.rand(IMAGES_SHAPE)
    assert diff_augment(images, ()) is images


def test_augmentations_are_seeded():
    images = torch.rand(IMAGES_SHAPE)
    policies = DIFFAUGMENT_POLICIES
    a = diff_augment(images, policies)
    torch.manual_seed(3)
    b = diff_augment(images, policies)
    torch.manual_seed(3)
    assert torch.equal(b, diff_augment(images, policies)) and not torch.equal(a, b)


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`image` (C, H, W) moved down dy and right dx, zeros shifted in."""
    _, h, w = image.shape
    out = torch.zeros_like(image)
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_translation_shifts_each_image_by_up_to_an_eighth_with_zero_padding():
    torch.manual_seed(0)
    images = torch.rand(64, 2, 16, 24) + 1  # no zeros of its own
    out = translation(images)
    shifts = []
    for image, moved in zip(images, out):
        found = [
            (dy, dx)
            for dy in range(-2, 3)  # 16 / 8
            for dx in range(-3, 4)  # 24 / 8
            if torch.equal(moved, shifted(image, dy, dx))
        ]
        assert len(found) == 1, "not a shift of at most 1/8 with zero padding"
        shifts.append(found[0])
    assert len(set(shifts)) > 10  # shifts differ between images, ...
    assert {dy for dy, _ in shifts} == {-2, -1, 0, 1, 2}  # ... covering the whole range


def test_translation_gradient_reaches_exactly_the_kept_pixels():
    torch.manual_seed(0)
    images = torch.rand(8, 1, 16, 16, requires_grad=True)
    out = translation(images)
    out.sum().backward()
    kept = (out.detach() != 0).sum()
    assert set(images.grad.unique().tolist()) <= {0.0, 1.0}
    assert images.grad.sum() == kept


def test_cutout_zeroes_one_half_size_square_per_image():
    torch.manual_seed(0)
    images = torch.rand(64, 3, 16, 24) + 1
    out = cutout(images)
    full = 0
    for image, cut in zip(images, out):
        zero = cut == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # all channels
        assert torch.equal(cut[~zero], image[~zero])  # the rest is untouched
        rows, cols = zero[0].any(1).nonzero(), zero[0].any(0).nonzero()
        assert zero[0].sum() == len(rows) * len(cols)  # a rectangle ...
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 12  # ... at most half the size
        full += (len(rows), len(cols)) == (8, 12)  # clipped only at the border
    assert full > 10


def test_color_is_a_random_affine_change_of_each_image():
    torch.manual_seed(0)
    images = torch.rand(32, 1, 8, 8) * 2 - 1  # one channel: saturation has nothing to change
    out = color(images)
    slopes, offsets = [], []
    for x, y in zip(images.flatten(1), out.flatten(1)):
        design = torch.stack([x, torch.ones_like(x)], 1).double()
        solution = torch.linalg.lstsq(design, y.double()[:, None]).solution.flatten()
        assert torch.allclose(design @ solution, y.double(), atol=1e-5)  # exactly affine
        slopes.append(solution[0].item())
        offsets.append((y.mean() - x.mean()).item())
    assert 0.5 <= min(slopes) and max(slopes) <= 1.5  # contrast in [0.5, 1.5]
    assert max(slopes) - min(slopes) > 0.5
    assert -0.5 <= min(offsets) and max(offsets) <= 0.5  # brightness in [-0.5, 0.5]
    assert max(offsets) - min(offsets) > 0.5


def test_color_saturation_scales_the_colour_away_from_gray():
    torch.manual_seed(0)
    images = torch.rand(64, 3, 4, 4) * 2 - 1
    out = color(images)
    before = (images - images.mean(1, keepdim=True)).flatten(1).norm(dim=1)
    after = (out - out.mean(1, keepdim=True)).flatten(1).norm(dim=1)
    ratio = after / before  # saturation U(0, 2) times contrast U(0.5, 1.5)
    assert ratio.min() < 0.3 and ratio.max() > 1.5 and ratio.max() <= 3.0


@pytest.mark.parametrize("phase", ["discriminator", "generator"])
def test_diffaugment_reaches_d_in_both_phases(digits, phase):
    torch.manual_seed(0)
    family = tiny_family(diffaugment="translation,cutout")
    seen = d_inputs(family)
    batch = real_batch(digits)
    family.phase_loss(phase, batch)
    assert len(seen) == (2 if phase == "discriminator" else 1)
    for images in seen:
        assert (images == 0).flatten(1).sum(1).min() >= 7 * 7  # every image cut out
    if phase == "discriminator":
        assert not torch.equal(seen[0], batch["images"])


def test_without_remedies_d_sees_the_images_unchanged(digits):
    family = tiny_family()
    seen = d_inputs(family)
    batch = real_batch(digits)
    family.phase_loss("discriminator", batch)
    assert torch.equal(seen[0], batch["images"])


# ---- instance noise ----------------------------------------------------------------------


def test_instance_noise_std_anneals_linearly_to_zero(digits):
    family = tiny_family(instance_noise=0.5)
    seen = d_inputs(family)
    batch = real_batch(digits, 64)
    measured = []
    for step in (0, 25, 50, 75, 99, 100):
        family.set_progress(step, 100)
        family.phase_loss("discriminator", batch)
        measured.append((seen[-2] - batch["images"]).std().item())  # the real images' noise
    for step, std in zip((0, 25, 50, 75, 99), measured):
        assert std == pytest.approx(0.5 * (1 - step / 100), rel=0.03)
    assert measured[-1] == 0.0  # the end of the run: no noise at all
    family.phase_loss("generator", batch)  # fakes get the same noise as the reals

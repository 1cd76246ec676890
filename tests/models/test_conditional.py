"""Class-conditional GANs (cgan with concat or projection D, acgan): the label reaches both
networks, the losses are the documented ones, and a short training makes the label control
what is drawn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge import TrainConfig, losses
from ganforge.data import to_model_range
from ganforge.metrics import extract_features, load_extractor
from ganforge.models import build_model
from ganforge.models.conditional import ConcatDiscriminator, ProjectionDiscriminator
from ganforge.sampling import balanced_labels

CONDITIONAL = [("cgan", "concat"), ("cgan", "projection"), ("acgan", "concat")]


@pytest.fixture(scope="module")
def mnist_classifier():
    """Class logits of uint8 images under the packaged digit classifier (99.3% on real)."""
    extractor = load_extractor("mnist")
    return lambda images: torch.from_numpy(extract_features(extractor, images).logits)


def conditional_family(model: str, cond: str = "concat", **options):
    if model == "cgan":
        options = {"cond": cond, **options}
    config = TrainConfig.from_dict(
        {"model": model, "width": 8, "z_dim": 8, "num_classes": 10, "label_smoothing": 0.0}
        | options
    )
    return build_model(config, 28, 1)


def real_batch(digits, n: int = 20) -> dict:
    return {"images": to_model_range(digits.images[:n]), "labels": digits.labels[:n]}


@pytest.mark.parametrize("model,cond", CONDITIONAL)
def test_the_label_changes_the_generated_image(model, cond):
    torch.manual_seed(0)
    family = conditional_family(model, cond)
    generator = family.networks["generator"].eval()
    z = family.sample_latent(1).repeat(10, 1)
    images = family.sample(generator, z, torch.arange(10))
    assert family.kind.class_conditional and family.num_classes == 10
    # the same noise, ten labels: ten different images
    assert all(not torch.allclose(images[0], images[c]) for c in range(1, 10))


@pytest.mark.parametrize("cond", ["concat", "projection"])
def test_cgan_discriminator_sees_the_label(cond):
    torch.manual_seed(0)
    family = conditional_family("cgan", cond)
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    a = family.networks["discriminator"](images, torch.tensor([0, 1, 2, 3]))
    b = family.networks["discriminator"](images, torch.tensor([5, 6, 7, 8]))
    assert a.shape == (4,) and not torch.allclose(a, b)


def test_concat_discriminator_joins_one_hot_label_maps_to_the_image():
    torch.manual_seed(0)
    discriminator = ConcatDiscriminator(3, 28, 1, 8)
    seen = []
    discriminator.net.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    images = torch.rand(2, 1, 28, 28)
    discriminator(images, torch.tensor([2, 0]))
    joined = seen[0]
    assert joined.shape == (2, 4, 28, 28)
    assert torch.equal(joined[:, 0], images[:, 0])
    assert torch.equal(joined[0, 1:], torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1).expand(3, 28, 28))
    assert torch.equal(joined[1, 1:], torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 28, 28))


def test_projection_discriminator_is_the_unconditional_logit_plus_an_inner_product():
    torch.manual_seed(0)
    discriminator = ProjectionDiscriminator(10, 28, 1, 8)
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    labels = torch.tensor([1, 4, 9])
    hidden = discriminator.net.features(images)
    unconditional = discriminator.net(images)
    expected = unconditional + (discriminator.embed.weight[labels] * hidden.sum((2, 3))).sum(1)
    assert torch.allclose(discriminator(images, labels), expected, atol=1e-5)


def test_acgan_discriminator_has_a_real_fake_head_and_a_class_head(digits):
    torch.manual_seed(0)
    family = conditional_family("acgan")
    images = real_batch(digits, 6)["images"]
    out = family.networks["discriminator"](images)  # D does not take the label
    assert out.shape == (6, 11)
    logits, classes = family.critic(images, torch.zeros(6, dtype=torch.int64))
    assert torch.equal(logits, out[:, 0]) and torch.equal(classes, out[:, 1:])


@pytest.mark.parametrize("aux_fakes", [False, True])
def test_acgan_losses_add_the_auxiliary_cross_entropy(digits, aux_fakes):
    torch.manual_seed(0)
    family = conditional_family("acgan", aux_weight=0.5, aux_fakes=aux_fakes)
    batch = real_batch(digits)
    torch.manual_seed(1)
    loss, stats = family.phase_loss("discriminator", batch)

    torch.manual_seed(1)
    z = family.sample_latent(20)
    with torch.no_grad():
        fake = family.networks["generator"](z, batch["labels"])
    discriminator = family.networks["discriminator"]
    real_out, fake_out = discriminator(batch["images"]), discriminator(fake)
    adversarial = losses.d_bce(real_out[:, 0], fake_out[:, 0], 1.0)
    aux = F.cross_entropy(real_out[:, 1:], batch["labels"])
    if aux_fakes:  # the paper's version: D's class head also learns the fakes' asked-for classes
        aux = aux + F.cross_entropy(fake_out[:, 1:], batch["labels"])
    assert loss.item() == pytest.approx((adversarial + 0.5 * aux).item(), rel=1e-5)
    assert stats["loss_d_aux"].item() == pytest.approx(aux.item(), rel=1e-5)
    real_accuracy = (real_out[:, 1:].argmax(1) == batch["labels"]).float().mean()
    assert stats["aux_accuracy"].item() == pytest.approx(real_accuracy.item())

    _, g_stats = family.phase_loss("generator", batch)
    assert {"loss_g", "loss_g_aux"} <= set(g_stats)


def test_cgan_fakes_are_drawn_for_the_real_batch_labels(digits):
    torch.manual_seed(0)
    family = conditional_family("cgan")
    asked = []
    family.networks["generator"].register_forward_pre_hook(lambda m, args: asked.append(args[1]))
    batch = real_batch(digits)
    family.phase_loss("discriminator", batch)
    family.phase_loss("generator", batch)
    assert all(torch.equal(labels, batch["labels"]) for labels in asked) and len(asked) == 2


def test_gradient_penalty_and_spectral_norm_work_with_labels(digits):
    torch.manual_seed(0)
    for model, cond in CONDITIONAL:
        family = conditional_family(model, cond, loss="wasserstein", gp=10.0, spectral_norm=True)
        loss, stats = family.phase_loss("discriminator", real_batch(digits, 8))
        loss.backward()
        assert stats["gp"].item() > 0 and torch.isfinite(loss)


def test_conditional_models_need_classes():
    with pytest.raises(Exception, match="--num-classes"):
        build_model(TrainConfig(model="cgan", width=8, z_dim=8), 28, 1)


# ---- learning ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cgan", "acgan"])
def test_after_short_training_samples_are_recognised_as_the_class_asked_for(
    model, tmp_path, mnist_classifier
):
    """300 CPU steps on real digits: the classifier trained on real digits reads the asked-for
    class in the samples well above chance (10%); 1,000 full-size steps reach 80-90%."""
    from ganforge import train

    torch.manual_seed(0)
    run = train(
        model=model,
        data="mnist-mini",
        steps=300,
        batch_size=32,
        width=32,
        z_dim=32,
        progress=False,
        log_every=50,
        checkpoint_every=300,
        sample_every=300,
        out=str(tmp_path / model),
    )
    labels = balanced_labels(200, 10)
    images = run.sample(200, seed=3, labels=labels.tolist())
    accuracy = (mnist_classifier(images).argmax(1) == labels).float()
    assert accuracy.mean() > 0.25, accuracy.mean()
    per_class = [accuracy[labels == c].mean().item() for c in range(10)]
    assert sum(a > 0.1 for a in per_class) >= 8, per_class
    # the same noise asked for another class gives another picture
    shifted = run.sample(200, seed=3, labels=((labels + 1) % 10).tolist())
    assert (mnist_classifier(shifted).argmax(1) == (labels + 1) % 10).float().mean() > 0.25
    if model == "acgan":  # its D's class head learned to classify real digits
        assert run.metrics()[-1]["aux_accuracy"] > 0.8

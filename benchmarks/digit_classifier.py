"""A small CNN digit classifier trained on real MNIST digits, used to score generated digits.

It is trained once on 4,000 of mnist-mini's 5,000 real digits (a stratified 1,000 are held
out) and cached under benchmarks/.cache/ as safetensors, so later runs load it in a second.
A plain MNIST classifier calls almost anything with ink a confident "8" (uniform noise: 100%
at >= 0.9), which would make "recognisable" meaningless for an early GAN; so training adds
outlier exposure: synthetic non-digits (ink blobs and speckle, patch-shuffled digits) are
trained towards a uniform prediction. `python digit_classifier.py`
prints how often such non-digits still pass the 0.9 threshold.

Scores for a batch of uint8 generated images (N, 28, 28, 1) or (N, 1, 28, 28):

- recognisable: fraction of samples whose top softmax probability is >= 0.9;
- class histogram over the 10 digits, the number of classes holding >= 2% of the samples,
  and KL(histogram || uniform) in nats (0 = perfectly balanced, log 10 = 2.30 = one class);
- classifier FID: the Frechet distance between Gaussians fitted to the classifier's
  penultimate (128-d) features of the samples and of all 5,000 real digits (4,000 of which
  the classifier was trained on). It is an FID-like number in this classifier's feature
  space, not comparable to Inception FID; with fewer samples it reads higher (bias).

    python benchmarks/digit_classifier.py            # train or load; print held-out scores
    python benchmarks/digit_classifier.py --retrain  # ignore the cache
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ganforge.data import load_dataset

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
VERSION = "v4"  # bump when the architecture, split or training recipe changes
CACHE_FILE = CACHE_DIR / f"digit_classifier_{VERSION}.safetensors"

NUM_CLASSES = 10
HELDOUT_PER_CLASS = 100
SPLIT_SEED = 0
CONFIDENT = 0.9
PRESENT_FRACTION = 0.02
OUTLIER_WEIGHT = 0.3


class DigitCNN(nn.Module):
    """Two conv blocks (32, 64 channels) -> 128-d features -> 10 logits.

    GroupNorm, not BatchNorm: training batches mix digits and synthetic non-digits, and
    BatchNorm's running statistics of that mixture gave a large train/eval gap (held-out
    accuracy 98% with batch statistics, 88% in eval mode). GroupNorm is per image.
    """

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.GroupNorm(8, c_out),
                nn.ReLU(inplace=True),
            ]

        self.features = nn.Sequential(
            *block(1, 32),
            *block(32, 32),
            nn.MaxPool2d(2),  # 14x14
            *block(32, 64),
            *block(64, 64),
            nn.MaxPool2d(2),  # 7x7
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(128, NUM_CLASSES)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, 128): the input of the final linear layer."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))


# ---- data ----------------------------------------------------------------------------------
def to_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images, NHWC (as ganforge samples) or NCHW (as ganforge datasets), 28x28 grayscale
    -> float (N, 1, 28, 28) centred around 0."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, H, W, C) or (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[1] != 1 and x.shape[-1] == 1:
        x = x.permute(0, 3, 1, 2)
    if tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(f"expected 28x28 grayscale images, got {tuple(x.shape)}")
    return x.float().div(255.0).sub(0.5).div(0.5)


def stratified_split(
    labels: np.ndarray, per_class: int = HELDOUT_PER_CLASS, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): `per_class` of every class held out, at random."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        held.append(idx[:per_class])
        train.append(idx[per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """mnist-mini as uint8 (5000, 1, 28, 28) and int64 labels."""
    data = load_dataset("mnist-mini")
    return data.images.numpy(), data.labels.numpy()


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random affine jitter per image: rotation +-10 deg, scale 0.9-1.1, shift +-2 px."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * (10 * np.pi / 180)
    scale = 0.9 + 0.2 * torch.rand(n, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Background is -1 after to_input; pad with it by shifting to 0 and back.
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def _ink_fields(n: int, generator: torch.Generator) -> torch.Tensor:
    """Random blobs and speckle: smooth noise at 4-28 px scales, thresholded to ink on black."""
    parts = []
    for i, size in enumerate((4, 7, 14, 28)):
        m = n // 4 + (1 if i < n % 4 else 0)
        field = F.interpolate(
            torch.rand(m, 1, size, size, generator=generator),
            size=(28, 28),
            mode="bilinear",
            align_corners=False,
        )
        cut = 0.3 + 0.55 * torch.rand(m, 1, 1, 1, generator=generator)
        parts.append(((field - cut) / (1 - cut)).clamp(0, 1) * 2 - 1)
    return torch.cat(parts)


def _overlays(x: torch.Tensor, y: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Two digits of different classes drawn on top of each other."""
    i = torch.randint(len(x), (n,), generator=generator)
    j = torch.randint(len(x), (n,), generator=generator)
    for _ in range(20):  # redraw partners of the same class
        same = y[i] == y[j]
        if not same.any():
            break
        j[same] = torch.randint(len(x), (int(same.sum()),), generator=generator)
    return torch.maximum(x[i], x[j])


def _patch_shuffles(x: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Digits cut into a 4x4 grid of 7x7 patches, each image's patches in a random order."""
    picked = x[torch.randint(len(x), (n,), generator=generator)]
    patches = picked.reshape(n, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(n, 16, 7, 7)
    order = torch.argsort(torch.rand(n, 16, generator=generator), dim=1)
    patches = patches[torch.arange(n)[:, None], order]
    return patches.reshape(n, 4, 4, 7, 7).permute(0, 1, 3, 2, 4).reshape(n, 1, 28, 28)


def make_outliers(
    x: torch.Tensor, y: torch.Tensor, n: int, generator: torch.Generator
) -> torch.Tensor:
    """`n` non-digit images (model input range) for outlier exposure: ink fields and
    patch-shuffled digits, half each. (Overlaid pairs of digits were tried too, but they taught
    the classifier to doubt real digits: only 44% of held-out digits stayed >= 0.9. They are
    kept as an unseen sanity check.)"""
    k = n // 2
    return torch.cat([_ink_fields(n - k, generator), _patch_shuffles(x, k, generator)])


# ---- training and caching ------------------------------------------------------------------
@torch.no_grad()
def accuracy(model: DigitCNN, images: np.ndarray, labels: np.ndarray) -> float:
    probs, _ = predict(model, images)
    return float((probs.argmax(1) == labels).mean())


def train_classifier(
    epochs: int = 15, batch_size: int = 64, seed: int = 0, verbose: bool = True
) -> tuple[DigitCNN, float]:
    """Train on the 4,000 training digits (plus synthetic non-digits pushed to a uniform
    prediction); returns (model in eval mode, held-out accuracy)."""
    images, labels = real_digits()
    train_idx, held_idx = stratified_split(labels)
    x_train = to_input(images[train_idx])
    y_train = torch.from_numpy(labels[train_idx])
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DigitCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps_per_epoch = (len(x_train) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=2e-3, total_steps=epochs * steps_per_epoch
    )
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_digits = total_junk = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            real = _augment(x_train[idx], generator)
            # Mild pixel noise on real digits (they keep their label), so speckle alone does
            # not decide the class.
            sigma = 0.25 * torch.rand(len(idx), 1, 1, 1, generator=generator)
            real = (real + sigma * torch.randn(real.shape, generator=generator)).clamp(-1, 1)
            junk = make_outliers(x_train, y_train, len(idx) // 2, generator)
            logits = model(torch.cat([real, junk]))
            loss = F.cross_entropy(logits[: len(idx)], y_train[idx])
            # Outlier exposure (Hendrycks et al. 2019): non-digits -> the uniform distribution,
            # so "confidence >= 0.9" means "looks like a digit", not "has ink".
            junk_loss = -F.log_softmax(logits[len(idx) :], dim=1).mean() - np.log(NUM_CLASSES)
            total_digits += loss.item() * len(idx)
            total_junk += junk_loss.item() * len(idx)
            loss = loss + OUTLIER_WEIGHT * junk_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if verbose and (epoch + 1) % 4 == 0:
            model.eval()
            probs, _ = predict(model, images[held_idx])
            acc = float((probs.argmax(1) == labels[held_idx]).mean())
            print(
                f"  classifier epoch {epoch + 1:2d}/{epochs}: digit loss "
                f"{total_digits / len(x_train):.4f}, non-digit KL to uniform "
                f"{total_junk / len(x_train):.4f}, held-out accuracy {acc:.2%}, "
                f"confident {recognisable_fraction(probs):.1%} "
                f"({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    model.eval()
    return model, accuracy(model, images[held_idx], labels[held_idx])


def load_classifier(retrain: bool = False, verbose: bool = True) -> DigitCNN:
    """The cached classifier in eval mode (trained and cached on first use).

    The held-out accuracy is stored with the weights and set as `model.heldout_accuracy`.
    """
    model = DigitCNN()
    if CACHE_FILE.is_file() and not retrain:
        from safetensors import safe_open

        model.load_state_dict(load_file(CACHE_FILE))
        with safe_open(CACHE_FILE, framework="pt") as handle:
            meta = handle.metadata() or {}
        model.heldout_accuracy = float(meta.get("heldout_accuracy", "nan"))
        return model.eval()
    if verbose:
        print(f"training the digit classifier (cache: {CACHE_FILE}) ...", flush=True)
    model, acc = train_classifier(verbose=verbose)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    tmp = CACHE_FILE.with_suffix(f".tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata={"heldout_accuracy": repr(acc), "version": VERSION})
    os.chmod(tmp, 0o644)
    os.replace(tmp, CACHE_FILE)
    model.heldout_accuracy = acc
    return model.eval()


# ---- evaluation ----------------------------------------------------------------------------
@torch.no_grad()
def predict(
    model: DigitCNN, images: np.ndarray | torch.Tensor, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """(softmax probabilities (N, 10), penultimate features (N, 128)) as float64 numpy."""
    was_training = model.training
    model.eval()
    x = to_input(images)
    probs, feats = [], []
    try:
        for chunk in x.split(batch_size):
            f = model.embed(chunk)
            probs.append(torch.softmax(model.head(f), dim=1))
            feats.append(f)
    finally:
        model.train(was_training)
    return torch.cat(probs).double().numpy(), torch.cat(feats).double().numpy()


def recognisable_fraction(probs: np.ndarray, threshold: float = CONFIDENT) -> float:
    """Fraction of samples whose most likely class has probability >= threshold."""
    return float((probs.max(axis=1) >= threshold).mean())


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """Fraction of samples assigned (argmax) to each of the 10 classes."""
    counts = np.bincount(probs.argmax(axis=1), minlength=NUM_CLASSES)
    return counts / counts.sum()


def classes_present(histogram: np.ndarray, fraction: float = PRESENT_FRACTION) -> int:
    return int((histogram >= fraction).sum())


def kl_to_uniform(histogram: np.ndarray) -> float:
    """KL(histogram || uniform) in nats, with 0 log 0 = 0."""
    p = histogram[histogram > 0]
    return float(np.sum(p * np.log(p * len(histogram))))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(
    stats_a: tuple[np.ndarray, np.ndarray], stats_b: tuple[np.ndarray, np.ndarray]
) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is computed as Tr((A S_b A)^(1/2)) with A = S_a^(1/2): the same
    eigenvalues, but of a symmetric PSD matrix, so no complex parts or failing sqrtm.
    """
    mu_a, cov_a = stats_a
    mu_b, cov_b = stats_b
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


_REAL_STATS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def real_stats(model: DigitCNN) -> tuple[np.ndarray, np.ndarray]:
    """Feature mean and covariance of all 5,000 real mnist-mini digits (memoised per model)."""
    key = id(model)
    if key not in _REAL_STATS:
        images, _ = real_digits()
        _REAL_STATS[key] = gaussian_stats(predict(model, images)[1])
    return _REAL_STATS[key]


def evaluate_samples(images: np.ndarray, model: DigitCNN | None = None) -> dict:
    """All scores for a batch of uint8 digit images (use 2,000+ for a stable classifier FID)."""
    model = model or load_classifier()
    probs, feats = predict(model, images)
    histogram = class_histogram(probs)
    return {
        "n": int(len(probs)),
        "recognisable": recognisable_fraction(probs),
        "histogram": histogram.tolist(),
        "classes_present": classes_present(histogram),
        "kl_uniform": kl_to_uniform(histogram),
        "classifier_fid": frechet_distance(gaussian_stats(feats), real_stats(model)),
    }


def to_uint8_nchw(x: torch.Tensor) -> np.ndarray:
    """Model input range [-1, 1] -> uint8 NCHW (the inverse of to_input)."""
    return x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def heldout_digits() -> np.ndarray:
    """The 1,000 held-out real digits (uint8 NCHW): a reference point for the scores."""
    images, labels = real_digits()
    return images[stratified_split(labels)[1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true", help="ignore the cached weights")
    args = parser.parse_args()
    model = load_classifier(retrain=args.retrain)
    print(f"classifier: {CACHE_FILE}")
    print(f"held-out accuracy (1,000 stratified real digits): {model.heldout_accuracy:.2%}")
    scores = evaluate_samples(heldout_digits(), model)
    print(
        f"held-out real digits as 'samples': recognisable {scores['recognisable']:.1%}, "
        f"classes present {scores['classes_present']}, KL to uniform "
        f"{scores['kl_uniform']:.4f}, classifier FID vs all 5,000 {scores['classifier_fid']:.2f}"
    )
    # Sanity checks on non-digits (made from the held-out digits, with an unseen seed).
    generator = torch.Generator().manual_seed(2024)
    images, labels = real_digits()
    held_idx = stratified_split(labels)[1]
    held, held_labels = to_input(images[held_idx]), torch.from_numpy(labels[held_idx])
    checks = {
        "uniform noise": torch.rand(1000, 1, 28, 28, generator=generator) * 2 - 1,
        "blank": torch.full((100, 1, 28, 28), -1.0),
        "ink blobs / speckle": _ink_fields(1000, generator),
        "two digits overlaid": _overlays(held, held_labels, 1000, generator),
        "patch-shuffled digits": _patch_shuffles(held, 1000, generator),
    }
    for name, x in checks.items():
        images = to_uint8_nchw(x)
        probs, _ = predict(model, images)
        print(f"non-digits, {name:<22}: recognisable {recognisable_fraction(probs):6.1%}")


if __name__ == "__main__":
    main()

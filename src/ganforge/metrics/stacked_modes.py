"""Mode scores of stacked-MNIST samples: how many of the 1,000 digit triples a generator draws,
and how evenly — PacGAN's Table 2 (Lin et al. 2018), after VEEGAN (Srivastava et al. 2017) and
unrolled GANs (Metz et al. 2017).

Protocol:
- draw SAMPLES = 26,000 samples, uint8 RGB images (any size: the classifier resizes);
- read each channel (R, G, B) as a grayscale digit with a digit classifier (ganforge's
  packaged "mnist" classifier; the argmax of its logits): the sample's mode is the triple,
  100 x R + 10 x G + B, as stacked-mnist labels its images;
- modes_found: the modes holding at least one sample, out of 1,000;
- mode_kl: KL(p_samples || uniform) in nats, p_samples = the mode histogram / N: the sum over
  modes with p > 0 of p log(1000 p). 0 for a perfectly even spread, log(1000 / k) for samples
  spread evenly over k modes. A finite sample of the uniform itself scores above 0: about
  999 / (2 N) (the chi-square bias of a histogram), 0.019 at N = 26,000.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.extractor import FeatureExtractor, as_uint8_nchw

SAMPLES = 26_000  # what PacGAN's Table 2 scores
NUM_MODES = 1000
DIGITS = tuple(str(d) for d in range(10))
PLACE_VALUES = np.array([100, 10, 1])  # mode = 100 R + 10 G + B
BATCH = 500  # samples classified at a time (their 1,500 channels)


@dataclass(frozen=True)
class StackedModes:
    modes_found: int  # modes with at least one sample
    num_modes: int
    mode_kl: float  # KL(p_samples || uniform) over the modes, in nats
    histogram: tuple[int, ...]  # the samples of each mode


def stacked_mode_scores(channel_digits: np.ndarray) -> StackedModes:
    """Scores of samples whose channels read as `channel_digits` (N, 3), digits 0-9, by the
    protocol in this module's docstring."""
    digits = np.asarray(channel_digits)
    if digits.ndim != 2 or digits.shape[1] != 3 or len(digits) == 0:
        raise ValueError(f"channel digits must be (N, 3) with N >= 1, got {digits.shape}")
    if digits.min() < 0 or digits.max() > 9:
        raise ValueError("channel digits must be 0-9")
    histogram = np.bincount(digits.astype(np.int64) @ PLACE_VALUES, minlength=NUM_MODES)
    p = histogram[histogram > 0] / len(digits)
    return StackedModes(
        modes_found=int((histogram > 0).sum()),
        num_modes=NUM_MODES,
        mode_kl=max(0.0, float(np.sum(p * np.log(p * NUM_MODES)))),  # not -1e-17
        histogram=tuple(int(count) for count in histogram),
    )


@torch.inference_mode()
def channel_digits(classifier: FeatureExtractor, images) -> np.ndarray:
    """The digit each channel of each image reads as: (N, 3) int64, for `images` uint8 RGB
    (N, 3, H, W) or (N, H, W, 3), or an iterable of such batches (a generator's samples).

    Each distinct channel image is classified once: real stacked data repeats its digits
    (26,000 test images from 500 digits), and a collapsed generator repeats itself."""
    if tuple(getattr(classifier, "class_names", ())) != DIGITS:
        raise GanforgeError(
            f"stacked modes: extractor '{classifier.name}' does not classify the digits 0-9 "
            "(the packaged 'mnist' classifier does)"
        )
    classifier.eval()
    known: dict[bytes, int] = {}  # a channel image's digest -> its digit
    rows = [_batch_digits(classifier, batch, known) for batch in _batches(images)]
    if not rows:
        raise GanforgeError("stacked modes: no images to classify")
    return np.concatenate(rows)


def _batches(images) -> Iterable[torch.Tensor]:
    if isinstance(images, (np.ndarray, torch.Tensor)):
        for start in range(0, len(images), BATCH):
            yield as_uint8_nchw(images[start : start + BATCH])
    else:
        for batch in images:
            yield as_uint8_nchw(batch)


def _batch_digits(classifier, batch: torch.Tensor, known: dict[bytes, int]) -> np.ndarray:
    if batch.shape[1] != 3:
        raise GanforgeError(
            f"stacked modes: samples need 3 channels (R, G, B digits), got {batch.shape[1]}"
        )
    channels = batch.reshape(-1, 1, *batch.shape[2:]).cpu()  # (3N, 1, H, W): R, G, B per image
    keys = [hashlib.blake2b(c.numpy().tobytes(), digest_size=16).digest() for c in channels]
    new = list({key: i for i, key in enumerate(keys) if key not in known}.items())
    for start in range(0, len(new), 3 * BATCH):
        chosen = new[start : start + 3 * BATCH]
        index = torch.tensor([i for _, i in chosen])
        _, logits = classifier(channels[index].to(classifier.device))
        for (key, _), digit in zip(chosen, logits.argmax(dim=1).tolist()):
            known[key] = digit
    return np.array([known[key] for key in keys], dtype=np.int64).reshape(-1, 3)

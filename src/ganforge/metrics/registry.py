"""Feature extractors by name: "inception" (the standard FID network; weights from a file, the
cache or a download) and the domain classifiers that ship with ganforge; or a path to an
extractor file written by `ganforge metrics train-extractor`."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.errors import GanforgeError
from ganforge.metrics.classifier import load_classifier
from ganforge.metrics.extractor import FeatureExtractor

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
# name -> (file in WEIGHTS_DIR, what it is for)
PACKAGED = {
    "mnist": ("mnist.safetensors", "28x28 grayscale digits (trained on mnist-mini)"),
    "fashion-mnist": ("fashion-mnist.safetensors", "28x28 grayscale clothing (Fashion-MNIST)"),
}
# datasets whose own classifier ships: the default extractor when evaluating runs on them
DATASET_EXTRACTORS = {"fashion-mnist": "fashion-mnist"}
INCEPTION = "inception"


def list_extractors() -> dict[str, str]:
    """Names and one-line descriptions of the built-in extractors."""
    described = {INCEPTION: "Inception-v3 pool3 (2048-d), the standard FID features"}
    described.update({name: text for name, (_, text) in PACKAGED.items()})
    return described


def default_extractor(channels: int, dataset: str | None = None) -> str:
    """The extractor used when none is named: the dataset's own shipped classifier, else the
    digit classifier for grayscale data (offline, and it can count modes), else Inception."""
    if dataset in DATASET_EXTRACTORS:
        return DATASET_EXTRACTORS[dataset]
    return "mnist" if channels == 1 else INCEPTION


def load_extractor(
    name: str | Path | FeatureExtractor,
    *,
    device: str = "cpu",
    inception_weights: str | Path | None = None,
    inception_resize: str = "pytorch-fid",
) -> FeatureExtractor:
    """An extractor in eval mode on `device`, by name, by extractor-file path, or as given.

    Building the network draws random initial weights (then overwritten): that happens under
    a forked RNG, so loading an extractor in the middle of training changes nothing there.
    """
    with torch.random.fork_rng(devices=[]):
        return _load(name, device, inception_weights, inception_resize)


def _load(name, device, inception_weights, inception_resize) -> FeatureExtractor:
    if isinstance(name, FeatureExtractor):
        return name.eval().to(device)
    key = str(name)
    if key == INCEPTION:
        from ganforge.metrics.inception import load_inception

        return load_inception(inception_weights, resize=inception_resize, device=device)
    if key in PACKAGED:
        return load_classifier(WEIGHTS_DIR / PACKAGED[key][0]).to(device)
    path = Path(key).expanduser()
    if path.suffix == ".safetensors" or path.exists():
        if not path.is_file():
            raise GanforgeError(f"--extractor: no file '{path}'")
        return load_classifier(path).to(device)
    known = ", ".join(list_extractors())
    raise GanforgeError(f"--extractor: unknown extractor '{key}' (known: {known}; or a file path)")

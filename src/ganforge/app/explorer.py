"""What the app's page does with a run, without the page: every function takes a loaded run
(catalog.LoadedRun) and plain values, and returns a picture (uint8 (H, W) or (H, W, 3), ready
to show) or text. Errors are GanforgeErrors with a message for the page.

Seeds mean what they mean everywhere in ganforge: the grid of seed s is `Run.sample(n, seed=s)`,
and the code of seed s is the one `ganforge latent` uses (latent.seed_codes), so a picture in
the page can be reproduced from the command line.
"""

from __future__ import annotations

import string
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ganforge.app.catalog import LoadedRun
from ganforge.app.directions import LatentDirections, principal_directions
from ganforge.data.folder import DECODE_ERRORS, decode_failure, read_square, square_pixels
from ganforge.errors import GanforgeError
from ganforge.latent import INTERPOLATIONS, decode, interpolation_codes, seed_codes
from ganforge.report.grid import image_grid
from ganforge.report.labels import labelled_grid
from ganforge.run import Run
from ganforge.sampling import Truncation
from ganforge.translate import translate_images

if TYPE_CHECKING:
    from ganforge.models import Kind

EVERY_CLASS = "every class (one row each)"
GRID_SAMPLES = 16  # a 4 x 4 grid
PER_CLASS = 6  # columns of the one-row-per-class grid
STRIP_FRAMES = 8
DIRECTIONS = 5
DIRECTION_STEPS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # the overview's columns, in standard deviations
LARGE_PIXELS = 192  # a single image is enlarged (nearest) to about this size
MAX_SEED = 2**53 - 1  # the largest whole number a browser holds exactly


# ---- what a run is ---------------------------------------------------------------------------


def describe(run: Run) -> str:
    """A few lines of Markdown about `run`: model, data, step, what it draws."""
    config = run.config
    what = kind_of(run)
    if what.class_conditional:
        kind = f"class-conditional, {len(config.class_names)} classes"
    elif what.translator:
        kind = "translates images"
    elif what.data == "points":
        kind = "draws points from noise"
    else:
        kind = "draws from noise"
    checkpoints = run.checkpoints
    if checkpoints:
        step = f"step {checkpoints[-1][0]} of {config.steps}"
    elif run.exported:
        step = f"exported weights, trained {config.steps} steps"
    else:
        step = f"**no checkpoint yet** of {config.steps}"
    shape = (
        f"{config.point_dims}-D points"
        if config.point_dims
        else f"{config.resolution} px, {config.channels} channel(s)"
    )
    lines = [
        f"**{markdown_text(config.model)}** on **{markdown_text(config.data)}**, {kind}",
        # a translator draws from its source image, not from noise: no z_dim to speak of
        ", ".join([shape, *([] if what.translator else [f"z_dim {config.z_dim}"]), step]),
    ]
    return "  \n".join(lines)


_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_text(value) -> str:
    """`value` (text from a run folder, a file name, an error) for a Markdown box, on one line,
    shown as the characters it holds: its tags, links, images and emphasis are not rendered
    (a config.json's `<img src=...>` would otherwise be fetched by every browser that looks)."""
    text = " ".join(str(value).split())  # no headings, lists or code blocks of its own
    return "".join(_ENTITIES.get(c) or ("\\" + c if c in string.punctuation else c) for c in text)


def kind_of(run: Run) -> Kind:
    """What the run's model is (models.family.Kind), without loading weights."""
    from ganforge.models import run_kind

    return run_kind(run.config)


def class_choices(run: Run) -> list[str]:
    """The class selector's options: every class at once, then each class by name."""
    names = run.config.class_names or []
    return [EVERY_CLASS, *names] if kind_of(run).class_conditional else []


def parse_seed(value, what: str = "seed") -> int:
    """A seed typed into the page: a whole number from 0 to MAX_SEED."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GanforgeError(f"{what}: '{value}' is not a number") from None
    if not number.is_integer() or not 0 <= number <= MAX_SEED:
        raise GanforgeError(f"{what}: must be a whole number from 0 to {MAX_SEED}, got {value}")
    return int(number)


def random_seed() -> int:
    """A fresh seed for the "new seed" button (small enough to read and type back)."""
    return int(np.random.default_rng().integers(0, 1_000_000))


# ---- samples -------------------------------------------------------------------------------


def sample_grid(
    loaded: LoadedRun, seed, class_name: str | None = None, truncation=1.0
) -> np.ndarray:
    """The samples of `seed`: a 4 x 4 grid; for a class-conditional run, of one class, or one
    row per class (columns share their noise, so a column shows one style in every class).
    `truncation`: the slider's psi, z scaled to psi * z (`ganforge sample --truncation PSI`)."""
    seed = parse_seed(seed)
    run = loaded.run
    _need_noise(loaded)
    truncation = parse_truncation(truncation)
    if loaded.family.kind.data == "points":
        if truncation.active:
            raise GanforgeError(
                "truncation: a run of points draws its frame untruncated; set psi to 1"
            )
        return point_frame(loaded, seed)
    if loaded.family.kind.class_conditional and _is_every_class(class_name):
        images, labels = run.class_grid(per_class=PER_CLASS, seed=seed, truncation=truncation)
        return _picture(images, PER_CLASS, row_labels=run.class_row_labels(labels, PER_CLASS))
    labels = class_name if loaded.family.kind.class_conditional else None
    images = run.sample(GRID_SAMPLES, seed=seed, labels=labels, truncation=truncation)
    return _picture(images)


def parse_truncation(value) -> Truncation:
    """The truncation slider's psi (the scale mode; 1: off), or an error saying "truncation"."""
    try:
        return Truncation(1.0 if value is None else value)
    except GanforgeError as exc:
        raise GanforgeError(str(exc).replace("--truncation", "truncation", 1)) from None


def point_frame(loaded: LoadedRun, seed: int) -> np.ndarray:
    """A run of points: the lab frame of `seed`'s samples (as its progress frames draw them:
    the real points, D's decision, G's gradient arrows)."""
    from ganforge.data import load_points

    if "real_points" not in loaded.saved:
        config = loaded.run.config
        data = load_points(config.data, config.data_root)
        loaded.saved["real_points"] = loaded.family.fixed_examples(data, None, 0, 0)
    frames, _ = loaded.family.preview(loaded.network, 0, seed, loaded.saved["real_points"])
    return frames[0]


def interpolation(
    loaded: LoadedRun, seed_a, seed_b, t: float, mode: str = "slerp", class_name: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The image at position `t` in [0, 1] on the path from the code of `seed_a` to that of
    `seed_b` (enlarged; one per class for every class), and the path as a strip of frames."""
    _need_noise(loaded)
    _need_images(loaded, "interpolation")
    if mode not in INTERPOLATIONS:
        raise GanforgeError(f"interpolation: '{mode}' is not one of {', '.join(INTERPOLATIONS)}")
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise GanforgeError(f"interpolation: the position must be in [0, 1], got {t}")
    ends = seed_codes(loaded.family, [parse_seed(seed_a, "seed A"), parse_seed(seed_b, "seed B")])
    frame = INTERPOLATIONS[mode](ends[0], ends[1], t).unsqueeze(0)
    path = interpolation_codes(ends[0], ends[1], STRIP_FRAMES, mode)
    labels = _labels(loaded, class_name)
    frames = _decode_rows(loaded, frame, labels)
    strip = _decode_rows(loaded, path, labels)
    names = loaded.run.config.class_names
    rows = [names[label] for label in labels] if labels and len(labels) > 1 else None
    strip_picture = _picture(strip, STRIP_FRAMES, row_labels=rows)
    return _picture(frames, columns=min(len(frames), 5), large=True), strip_picture


def directions(loaded: LoadedRun) -> LatentDirections:
    """The run's GANSpace directions (directions.py), computed once while it stays loaded."""
    _need_noise(loaded)
    _need_images(loaded, "directions")
    if "directions" not in loaded.saved:
        loaded.saved["directions"] = principal_directions(
            loaded.family, loaded.network, k=DIRECTIONS
        )
    return loaded.saved["directions"]


def describe_directions(found: LatentDirections) -> str:
    shares = ", ".join(
        f"{j + 1}: {100 * float(share):.1f}%" for j, share in enumerate(found.explained)
    )
    return f"Share of the first layer's variance along each direction: {shares}"


def direction_edit(
    loaded: LoadedRun, seed, amounts: list[float], class_name: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The sample of `seed` moved along the directions by `amounts` (standard deviations;
    enlarged, one per class for every class), and an overview: one row per direction, the
    seed's sample moved by DIRECTION_STEPS along it alone."""
    found = directions(loaded)
    code = seed_codes(loaded.family, [parse_seed(seed)])
    labels = _labels(loaded, class_name)
    edited = _decode_rows(loaded, found.move(code, [float(a) for a in amounts]), labels)
    overview_codes = []
    for j in range(len(found.vectors)):
        for step in DIRECTION_STEPS:
            amount = [0.0] * j + [step]
            overview_codes.append(found.move(code, amount))
    first = labels[:1] if labels else None  # the overview: the first class shown
    overview = _decode_rows(loaded, torch.cat(overview_codes), first)
    return (
        _picture(edited, columns=min(len(edited), 5), large=True),
        _picture(overview, columns=len(DIRECTION_STEPS)),
    )


# ---- translation ----------------------------------------------------------------------------


def translate_upload(loaded: LoadedRun, path: str | Path | None) -> np.ndarray:
    """An uploaded image file through a translator: a picture of source | translation."""
    if not path:
        raise GanforgeError("choose an image file to translate first")
    _need_translator(loaded)
    return _translation(loaded, _read_upload(loaded, path))


def _read_upload(loaded: LoadedRun, path: str | Path | None) -> torch.Tensor:
    """An uploaded file as the run's images are: uint8 (C, H, W), square, its size."""
    if not path:
        raise GanforgeError("choose an image file first")
    config = loaded.run.config
    try:
        pixels = read_square(Path(path), config.resolution, config.channels)
    except DECODE_ERRORS as exc:
        name = Path(path).name
        why = decode_failure(exc).replace(str(path), name)  # not the server's upload folder
        raise GanforgeError(
            f"'{name}' is not an image that can be read ({why}): "
            "upload a PNG, JPEG, WebP or BMP file"
        ) from None
    return torch.from_numpy(pixels)


def translate_drawing(loaded: LoadedRun, drawing) -> np.ndarray:
    """A drawing (uint8 (H, W) or (H, W, C) array, or the sketchpad's dict of layers with a
    "composite") through a translator: a picture of source | translation."""
    _need_translator(loaded)
    if isinstance(drawing, dict):
        drawing = drawing.get("composite")
    if drawing is None:
        raise GanforgeError("draw something first")
    pixels = np.asarray(drawing)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise GanforgeError("the drawing is not an 8-bit image")
    if pixels.ndim == 3 and pixels.shape[2] == 4:  # RGBA: paint it on black, as drawn
        pixels = (pixels[..., :3] * (pixels[..., 3:] / 255.0)).astype(np.uint8)
    image = Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
    config = loaded.run.config
    return _translation(
        loaded, torch.from_numpy(square_pixels(image, config.resolution, config.channels))
    )


def _translation(loaded: LoadedRun, source: torch.Tensor) -> np.ndarray:
    output = translate_images(loaded.family, loaded.network, source.unsqueeze(0))
    pair = torch.cat([source.unsqueeze(0), output]).permute(0, 2, 3, 1).numpy()
    return _picture(pair, columns=2, large=True)


# ---- your image: projected into the latent space -------------------------------------------

YOUR_STEPS = 200  # descent steps of the page's projection (`latent project` defaults to 300)


def project_upload(
    loaded: LoadedRun, path, steps, class_name: str | None = None, progress=None
) -> tuple[np.ndarray, str, dict]:
    """An uploaded image projected into the run's latent space (`ganforge latent project`):
    a picture of original | reconstruction, a line of measures, and the code to keep (a dict
    the page holds: the run, the code, the class it was drawn with)."""
    from ganforge.metrics import default_extractor, load_extractor
    from ganforge.projection import conditioning_labels, project

    _need_noise(loaded)
    _need_images(loaded, "projection")
    steps = parse_seed(steps, "steps")
    if not 1 <= steps <= 2000:
        raise GanforgeError(f"steps: between 1 and 2000, got {steps}")
    source = _read_upload(loaded, path).unsqueeze(0)
    config = loaded.run.config
    if "extractor" not in loaded.saved:
        name = config.extractor or default_extractor(config.channels, config.data)
        loaded.saved["extractor"] = load_extractor(name)
    extractor = loaded.saved["extractor"]
    labels = None
    if loaded.family.kind.class_conditional:
        chosen = None if _is_every_class(class_name) else class_name
        labels = conditioning_labels(loaded.run, extractor, source, chosen)
    result = project(
        loaded.family,
        loaded.network,
        source,
        extractor,
        steps=steps,
        labels=labels,
        progress=progress,
    )
    pair = torch.cat([result.originals, result.reconstructions]).permute(0, 2, 3, 1).numpy()
    said = f"PSNR {float(result.psnr[0]):.1f} dB, L1 {float(result.l1[0]):.3f}"
    if result.classes is not None:
        names = result.class_names
        said += (
            f"; the {extractor.name} classifier reads the original as "
            f"**{names[int(result.classes[0][0])]}** and the reconstruction as "
            f"**{names[int(result.classes[1][0])]}**"
        )
    said += f" ({steps} steps, {result.seconds:.1f} s)"
    kept = {
        "run": loaded.name,
        "code": result.codes[0].tolist(),
        "label": None if labels is None else int(labels[0]),
    }
    return _picture(pair, columns=2, large=True), said, kept


def _your_code(loaded: LoadedRun, kept: dict | None) -> tuple[torch.Tensor, list[int] | None]:
    if not kept or kept.get("run") != loaded.name:
        raise GanforgeError("project an image of this run first (upload one above)")
    label = kept.get("label")
    return torch.tensor([kept["code"]], dtype=torch.float32), None if label is None else [label]


def your_walk(loaded: LoadedRun, kept: dict | None, seed, mode: str = "slerp") -> np.ndarray:
    """The path from your image's code to the sample of `seed` (`latent interp --from
    YOURS.npy --to SEED`), as a strip."""
    code, labels = _your_code(loaded, kept)
    if mode not in INTERPOLATIONS:
        raise GanforgeError(f"interpolation: '{mode}' is not one of {', '.join(INTERPOLATIONS)}")
    end = seed_codes(loaded.family, [parse_seed(seed)])
    path = interpolation_codes(code[0], end[0], STRIP_FRAMES, mode)
    return _picture(_decode_rows(loaded, path, labels), STRIP_FRAMES)


def your_directions(loaded: LoadedRun, kept: dict | None) -> np.ndarray:
    """Your image's code moved along each GANSpace direction alone (one row per direction)."""
    code, labels = _your_code(loaded, kept)
    found = directions(loaded)
    codes = [
        found.move(code, [0.0] * j + [step])
        for j in range(len(found.vectors))
        for step in DIRECTION_STEPS
    ]
    return _picture(_decode_rows(loaded, torch.cat(codes), labels), len(DIRECTION_STEPS))


# ---- the report ------------------------------------------------------------------------------


def report_page(run: Run) -> str:
    """The run's HTML report (`ganforge report`), built now into a temporary file so that the
    run folder keeps whatever report.html it had."""
    from ganforge.report.html import build_report  # matplotlib: only when asked for

    with tempfile.TemporaryDirectory(prefix="ganforge-app-") as folder:
        try:
            path = build_report(run, Path(folder) / "report.html")
        except OSError as exc:
            raise GanforgeError(
                f"the report of '{run.path}' could not be built: {exc.strerror or exc}"
            ) from None
        return path.read_text(encoding="utf-8")


# ---- helpers -------------------------------------------------------------------------------


def _need_noise(loaded: LoadedRun) -> None:
    if not loaded.family.kind.draws_from_noise:
        raise GanforgeError(
            f"run '{loaded.name}' translates images; use the Translate tab (it draws nothing "
            "from noise)"
        )


def _need_images(loaded: LoadedRun, what: str) -> None:
    if loaded.family.kind.data == "points":
        raise GanforgeError(
            f"{what}: run '{loaded.name}' draws points, not images; its Samples tab shows them"
        )


def _need_translator(loaded: LoadedRun) -> None:
    if not loaded.family.kind.translator:
        raise GanforgeError(
            f"run '{loaded.name}' is a {loaded.run.config.model} run: it draws from noise and "
            "translates nothing (pick a pix2pix run)"
        )


def _is_every_class(class_name: str | None) -> bool:
    return class_name in (None, "", EVERY_CLASS)


def _labels(loaded: LoadedRun, class_name: str | None) -> list[int] | None:
    """The classes to draw: None for an unconditional run; all of them, or the one named."""
    if not loaded.family.kind.class_conditional:
        return None
    if _is_every_class(class_name):
        return list(range(loaded.family.num_classes))
    return [int(loaded.run.class_labels(class_name)[0])]


def _decode_rows(loaded: LoadedRun, codes: torch.Tensor, labels: list[int] | None) -> np.ndarray:
    """Images of `codes` (decoded as `ganforge latent` does), once per label in `labels`: row
    by row, (len(labels) * N, H, W, C)."""
    if labels is None:
        return decode(loaded.family, loaded.network, codes)
    return np.concatenate([decode(loaded.family, loaded.network, codes, label) for label in labels])


def _picture(
    images: np.ndarray,
    columns: int | None = None,
    large: bool = False,
    row_labels: list[str] | None = None,
) -> np.ndarray:
    """uint8 images (N, H, W, C) as one grid picture, (H', W') for gray, (H', W', 3) for RGB;
    `large` enlarges each image (nearest neighbour) to about LARGE_PIXELS; `row_labels` names
    each row on the left (class rows: as `ganforge sample --classes all` writes them)."""
    if large:
        scale = max(1, LARGE_PIXELS // max(images.shape[1:3]))
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    if row_labels:
        return np.asarray(labelled_grid(images, columns, row_labels))
    grid = image_grid(images, columns)
    return grid[..., 0] if grid.shape[-1] == 1 else grid

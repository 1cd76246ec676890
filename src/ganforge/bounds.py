"""The largest sizes ganforge accepts: far beyond any real use, well below what exhausts memory
or runs for days. Each check raises a one-line GanforgeError naming the flag and the bound
before any work is done, so a typo (`--z-dim 100000000`) is refused, not an out-of-memory
traceback or a hang.
"""

from __future__ import annotations

from ganforge.errors import GanforgeError

# training options (TrainConfig fields; checked by TrainConfig.validate, so a hand-edited
# RUN/config.json read by resume, sample or eval meets the same bounds)
MAX_RESOLUTION = 1024  # pixels per side
MAX_Z_DIM = 4096
MAX_WIDTH = 4096  # base channel width (the networks' total size is bounded too, below)
MAX_NUM_CLASSES = 10_000
MAX_D_STEPS = 100  # D updates per G update: one iteration stays short, so Ctrl-C is prompt
MAX_POINT_DIMS = 64  # point data: coordinates per point (the toy sets have 2)
MAX_GRID = 4096  # images in a progress grid (--n-grid)
# samples: `ganforge sample` holds them all in memory; evaluation streams them in batches but
# keeps one feature vector per sample (Inception: 2,048 floats) and compares all pairs
MAX_SAMPLES = 1_000_000
MAX_EVAL_SAMPLES = 200_000  # four times the customary 50,000
MAX_FRAMES = 1_000  # frames of a latent interpolation or walk (--steps, --keys x --frames)
MAX_SEED = 2**63 - 1  # torch.manual_seed takes 0 .. 2^64-1; int64 keeps every consumer safe
# products, where one allocation is their product
MAX_PARAMETERS = 500_000_000  # generator + discriminator (x ~5 with gradients, Adam, EMA)
MAX_IMAGE_BYTES = 2**31  # uint8 images held at once: N x H x W x C (2 GiB)
MAX_DATASET_BYTES = 2**33  # a dataset resized in memory for training (8 GiB of uint8)
MAX_GRID_BYTES = 2**28  # one picture: a grid or a GIF's frames (256 MiB of pixels)
MAX_NOISE_FLOATS = 2**28  # noise drawn at once: N x z-dim float32 (1 GiB)


def check_at_most(flag: str, value: int, bound: int) -> None:
    """`flag` VALUE is refused when it exceeds `bound`."""
    if value > bound:
        raise GanforgeError(f"{flag}: must be at most {bound:,}, got {value:,}")


def check_seed(flag: str, seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise GanforgeError(f"{flag}: must be in 0 .. 2^63-1, got {seed}")


def check_images(
    flag: str, n: int, resolution: int, channels: int, bound: int = MAX_IMAGE_BYTES
) -> None:
    """`n` uint8 images of `resolution`^2 x `channels`, held at once, must fit in `bound` bytes."""
    size = n * resolution * resolution * channels
    if size > bound:
        most = max(1, bound // (resolution * resolution * channels))
        raise GanforgeError(
            f"{flag}: {n:,} images of {channels} x {resolution} x {resolution} would take "
            f"{size / 2**20:,.0f} MiB at once, more than {bound / 2**20:,.0f} MiB; "
            f"at most {most:,} at this size"
        )


def check_noise(flag: str, n: int, z_dim: int) -> None:
    """`n` noise vectors of `z_dim` floats are drawn at once (in one seeded draw)."""
    if n * z_dim > MAX_NOISE_FLOATS:
        raise GanforgeError(
            f"{flag}: {n:,} codes of {z_dim:,} numbers would take "
            f"{n * z_dim * 4 / 2**20:,.0f} MiB at once; at most {MAX_NOISE_FLOATS // z_dim:,} "
            f"with this run's --z-dim {z_dim}"
        )


def check_parameters(count: int, flags: str) -> None:
    """The networks of one run hold at most MAX_PARAMETERS numbers; `flags` names what sets
    their size ("--width 4096, --resolution 64, ...")."""
    if count > MAX_PARAMETERS:
        raise GanforgeError(
            f"--width: the networks would have {count:,} parameters, more than "
            f"{MAX_PARAMETERS:,} ({flags}); lower --width or --resolution"
        )


def check_samples(
    flag: str,
    n: int,
    *,
    z_dim: int,
    resolution: int | None,
    channels: int | None,
    picture: bool = False,
) -> None:
    """`n` samples drawn at once (one noise draw, every image in memory; a `picture`: one
    grid of them all)."""
    check_at_most(flag, n, MAX_SAMPLES)
    check_noise(flag, n, z_dim)
    if resolution and channels:
        check_images(flag, n, resolution, channels, MAX_GRID_BYTES if picture else MAX_IMAGE_BYTES)

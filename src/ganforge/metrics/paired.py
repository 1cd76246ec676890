"""Full-reference measures of a translation against its target: L1, PSNR and SSIM.

Images are float NCHW in [0, 1]. Each function returns one value per image (N,), so that a
mean over any batching is the same number.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
MAX_PSNR = 100.0  # dB, for identical images (a finite number that JSON can hold)


def l1_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image, in [0, 1]."""
    _check_pair(outputs, targets)
    return (outputs - targets).abs().flatten(1).mean(dim=1)


def psnr(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB for a peak of 1: 10 log10(1 / MSE), capped
    at MAX_PSNR."""
    _check_pair(outputs, targets)
    mse = (outputs - targets).double().pow(2).flatten(1).mean(dim=1)
    floor = 10 ** (-MAX_PSNR / 10)
    return (-10 * torch.log10(mse.clamp_min(floor))).float()


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """The normalised 2-D Gaussian weights (size, size) of SSIM's local statistics."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    line = line / line.sum()
    return line[:, None] * line[None, :]


def ssim(outputs: torch.Tensor, targets: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image: local means, variances and covariance
    under an 11x11 Gaussian window (sigma 1.5) at every position where the window fits, per
    channel, with C1 = (0.01 L)^2 and C2 = (0.03 L)^2; the mean of the SSIM map over positions
    and channels. 1 for identical images. Images need at least 11x11 pixels."""
    _check_pair(outputs, targets)
    channels = outputs.shape[1]
    if min(outputs.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    x, y = outputs.double(), targets.double()
    window = gaussian_window().to(x.device).expand(channels, 1, -1, -1)

    def local_mean(images: torch.Tensor) -> torch.Tensor:
        return F.conv2d(images, window, groups=channels)

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    covariance = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * covariance + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return index.flatten(1).mean(dim=1).float()


def paired_scores(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """L1, PSNR and SSIM per image, keyed "l1", "psnr", "ssim"."""
    return {
        "l1": l1_error(outputs, targets),
        "psnr": psnr(outputs, targets),
        "ssim": ssim(outputs, targets),
    }


def _check_pair(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    if outputs.shape != targets.shape or outputs.dim() != 4:
        raise ValueError(
            f"need two image batches of one NCHW shape, got {tuple(outputs.shape)} and "
            f"{tuple(targets.shape)}"
        )

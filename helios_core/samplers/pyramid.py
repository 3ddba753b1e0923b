"""Pyramid sampling helpers: start at 1/4 latent resolution, then upsample and re-noise between stages.

The initial noise is drawn at full latent resolution and bilinearly halved per extra stage with x2 amplitude
compensation (averaging 4 values divides the std by 2). Between stages the latents are upsampled by nearest
neighbour and re-noised with block-correlated noise, whose 2x2 blocks have covariance (1+g) I - g 11^T: independent
noise on a nearest-upsampled image would leave visible 2x2 blocks (PyramidFlow's recipe, used by Helios).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def downsample_noise(noise: torch.Tensor, num_stages: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, T, H / 2^(s-1), W / 2^(s-1)), amplitude-compensated."""
    batch, channels, frames, height, width = noise.shape
    flat = noise.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)
    for _ in range(num_stages - 1):
        height, width = height // 2, width // 2
        flat = F.interpolate(flat, size=(height, width), mode="bilinear") * 2
    return flat.reshape(batch, frames, channels, height, width).permute(0, 2, 1, 3, 4)


def upsample_nearest(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, T, h, w) -> (B, C, T, 2h, 2w), per frame."""
    batch, channels, frames, height, width = latents.shape
    flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)
    flat = F.interpolate(flat, size=(height * 2, width * 2), mode="nearest")
    return flat.reshape(batch, frames, channels, height * 2, width * 2).permute(0, 2, 1, 3, 4)


def renoise_coefficients(start_sigma: float, gamma: float) -> tuple[float, float]:
    """alpha, beta for x <- alpha x + beta n at a stage whose (uncorrected) start noise level is `start_sigma`."""
    signal = 1 - start_sigma
    alpha = 1 / (math.sqrt(1 + (1 / gamma)) * (1 - signal) + signal)
    beta = alpha * (1 - signal) / math.sqrt(gamma)
    return alpha, beta


def block_noise(
    shape: tuple[int, int, int, int, int],
    gamma: float,
    generator: torch.Generator | None,
    patch: tuple[int, int] = (2, 2),
) -> torch.Tensor:
    """Gaussian noise whose patch x patch blocks are correlated with covariance (1+g) I - g 11^T.

    That matrix is singular (the all-ones direction has eigenvalue 1 + g - g*4 = 0 for g = 1/3), so its Cholesky
    factor only exists with a jitter; diffusers adds 1e-8 in fp32, which is below fp32's resolution at 1.0 and fails
    on CPU LAPACK (it passes on cuSOLVER by rounding luck). We factor in float64, where the jitter is representable,
    and cast the factor to fp32. Draw order and layout match diffusers, so seeded runs agree.
    """
    batch, channels, frames, height, width = shape
    ph, pw = patch
    block_size = ph * pw
    cov = torch.eye(block_size, dtype=torch.float64) * (1 + gamma) - torch.full(
        (block_size, block_size), gamma, dtype=torch.float64
    )
    factor = torch.linalg.cholesky(cov + torch.eye(block_size, dtype=torch.float64) * 1e-8).float()
    num_blocks = batch * channels * frames * (height // ph) * (width // pw)
    device = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(num_blocks, block_size, generator=generator, device=device)
    noise = z @ factor.to(z.device).T
    noise = noise.view(batch, channels, frames, height // ph, width // pw, ph, pw)
    return noise.permute(0, 1, 2, 3, 5, 4, 6).reshape(batch, channels, frames, height, width)

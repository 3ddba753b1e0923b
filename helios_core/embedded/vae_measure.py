"""Measurements of a trained VAE on world clips: per-channel latent statistics and reconstruction PSNR.

- `latent_statistics`: the engine normalises latents as (z - latents_mean) / latents_std per channel (LatentCodec),
  with z SAMPLED from the posterior as the engine and the training data pipeline do. So the statistics are taken
  over sampled z (noise from a seeded generator), over every batch, frame and position: the first latent frame
  (encoded from one pixel frame) is part of every chunk the transformer sees, so it is counted too.
- `reconstruction_psnr`: what a viewer gets: the posterior mean decoded by diffusers' own `vae.decode` (the
  inference path), rounded to uint8 like the writer (`to_uint8_frames`), against the rendered uint8 frames. PSNR is
  over all pixels of all clips together (10 log10(255^2 / MSE)).
Both run in fp32 without gradients and on the VAE's device; channel sums are accumulated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from diffusers import AutoencoderKLWan

from helios_core.embedded.vae_forward import encode_moments, sample_latents


@torch.no_grad()
def latent_statistics(
    vae: AutoencoderKLWan, pixel_batches: Iterable[torch.Tensor], seed: int
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of posterior samples z over `pixel_batches` ((B, 3, T, H, W))."""
    device = next(vae.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    count = 0
    total = torch.zeros(vae.config.z_dim, dtype=torch.float64, device=device)
    total_sq = torch.zeros_like(total)
    for pixels in pixel_batches:
        mean, logvar = encode_moments(vae, pixels.to(device, torch.float32))
        z = sample_latents(mean, logvar, generator).double()
        per_channel = z.transpose(0, 1).reshape(vae.config.z_dim, -1)
        count += per_channel.shape[1]
        total += per_channel.sum(dim=1)
        total_sq += per_channel.square().sum(dim=1)
    channel_mean = total / count
    # Population variance from the two sums; float64 keeps the cancellation harmless at these sizes.
    channel_std = (total_sq / count - channel_mean.square()).clamp_min(1e-12).sqrt()
    return channel_mean.tolist(), channel_std.tolist()


@torch.no_grad()
def reconstruction_psnr(vae: AutoencoderKLWan, pixel_batches: Iterable[torch.Tensor]) -> float:
    """PSNR in dB of the uint8 reconstruction (posterior mean, `vae.decode`) against the uint8 input frames."""
    device = next(vae.parameters()).device
    squared_error, count = 0.0, 0
    for pixels in pixel_batches:
        pixels = pixels.to(device, torch.float32)
        mean, _ = encode_moments(vae, pixels)
        decoded = vae.decode(mean).sample
        squared_error += float((_to_levels(decoded) - _to_levels(pixels)).square().sum())
        count += pixels.numel()
    mse = squared_error / count
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _to_levels(pixels: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> rounded uint8 levels 0..255 as float64 (the writer's rounding, see model.vae.to_uint8_frames)."""
    return (pixels.double() * 0.5 + 0.5).clamp(0.0, 1.0).mul(255.0).round()

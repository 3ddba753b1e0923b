"""Differentiable encode / decode of diffusers' `AutoencoderKLWan` for training: the causal path in two calls.

Why not `vae(x)`: diffusers' `decode` clamps its output to [-1, 1], which zeroes the gradient of every pixel that
overshoots, and it walks the decoder one latent frame at a time (the encoder four frames at a time): on a GPU a
small VAE is then bound by kernel launches, not arithmetic.

What these functions do instead, with diffusers' own modules and causal feature cache (`vae.clear_cache()`,
`vae._feat_map` / `vae._enc_feat_map`): one call for the first frame (the stream's start, where the temporal
resamplers pass frame 0 through), then ONE call for all later frames. That is the same network as diffusers'
loop, because every causal conv caches its last two input frames and each temporal downsampler (stride 2, fed
4-frame-aligned chunks) sees the same frame pairs whether the chunks come one by one or together; the tests check
both functions against `vae.encode` / `vae.decode` on a random VAE.

Invariants: `encode_moments(vae, x)` equals `vae.encode(x).latent_dist.mean / .logvar`; `decode_unclamped(vae, z)`
clamped to [-1, 1] equals `vae.decode(z).sample`. Pixel frame counts must be 1 + 4k (latent frames 1 + k), as for
diffusers. The caches are cleared afterwards, so no activation (or autograd graph) outlives the call.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import patchify, unpatchify

from helios_core.errors import ConfigError


def encode_moments(vae: AutoencoderKLWan, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, 1 + 4k, H, W) in [-1, 1] -> (mean, logvar), each (B, z_dim, 1 + k, H/8, W/8); keeps gradients."""
    frames = pixels.shape[2]
    if frames < 1 or (frames - 1) % vae.config.scale_factor_temporal:
        raise ConfigError(f"VAE training clips need 1 + {vae.config.scale_factor_temporal}k frames, got {frames}")
    x = patchify(pixels, patch_size=vae.config.patch_size) if vae.config.patch_size is not None else pixels
    vae.clear_cache()
    try:
        parts = [vae.encoder(x[:, :, :1], feat_cache=vae._enc_feat_map, feat_idx=[0])]
        if frames > 1:
            parts.append(vae.encoder(x[:, :, 1:], feat_cache=vae._enc_feat_map, feat_idx=[0]))
    finally:
        vae.clear_cache()
    moments = vae.quant_conv(torch.cat(parts, dim=2))
    mean, logvar = moments.chunk(2, dim=1)
    # The same clamp as diffusers' DiagonalGaussianDistribution, so sampling and the KL term see what inference sees.
    return mean, logvar.clamp(-30.0, 20.0)


def sample_latents(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Reparameterised sample mean + exp(logvar / 2) * noise (noise from `generator`, on mean's device)."""
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + torch.exp(0.5 * logvar) * noise


def decode_unclamped(vae: AutoencoderKLWan, latents: torch.Tensor) -> torch.Tensor:
    """(B, z_dim, 1 + k, h, w) de-normalised latents -> (B, 3, 1 + 4k, 8h, 8w) pixels, NOT clamped; keeps gradients."""
    x = vae.post_quant_conv(latents)
    vae.clear_cache()
    try:
        parts = [vae.decoder(x[:, :, :1], feat_cache=vae._feat_map, feat_idx=[0], first_chunk=True)]
        if x.shape[2] > 1:
            parts.append(vae.decoder(x[:, :, 1:], feat_cache=vae._feat_map, feat_idx=[0]))
    finally:
        vae.clear_cache()
    out = torch.cat(parts, dim=2)
    return unpatchify(out, patch_size=vae.config.patch_size) if vae.config.patch_size is not None else out

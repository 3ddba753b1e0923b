"""The two-call differentiable VAE path equals diffusers' frame-by-frame encode and decode."""

import pytest
import torch
from diffusers import AutoencoderKLWan

from helios_core.embedded.config import embedded_vae_config
from helios_core.embedded.vae_forward import decode_unclamped, encode_moments, sample_latents
from helios_core.errors import ConfigError

PLAIN = {"base_dim": 8, "z_dim": 16, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1, "attn_scales": [],
         "temperal_downsample": [False, True, True]}
EMBEDDED_SMALL = {**embedded_vae_config(), "base_dim": 8, "decoder_base_dim": 4}


@pytest.mark.parametrize("config", [PLAIN, EMBEDDED_SMALL], ids=["plain", "pixel-shuffle"])
def test_matches_diffusers(config):
    torch.manual_seed(0)
    vae = AutoencoderKLWan.from_config(config).eval()
    pixels = torch.rand(2, 3, 9, 16, 32) * 2 - 1
    with torch.no_grad():
        reference = vae.encode(pixels).latent_dist
        mean, logvar = encode_moments(vae, pixels)
        latents = torch.randn_like(mean) * 3  # large enough that some decoded pixels leave [-1, 1]
        decoded = vae.decode(latents).sample
        unclamped = decode_unclamped(vae, latents)
    torch.testing.assert_close(mean, reference.mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logvar, reference.logvar, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unclamped.clamp(-1, 1), decoded, rtol=1e-5, atol=1e-5)
    assert unclamped.abs().max() > 1.0  # really unclamped


def test_gradients_reach_every_layer():
    torch.manual_seed(0)
    vae = AutoencoderKLWan.from_config(EMBEDDED_SMALL)
    pixels = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    mean, logvar = encode_moments(vae, pixels)
    decode_unclamped(vae, sample_latents(mean, logvar, torch.Generator().manual_seed(0))).square().mean().backward()
    without = [name for name, p in vae.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert without == []
    assert all(entry is None for entry in vae._feat_map + vae._enc_feat_map)  # no cached graph left behind


def test_rejects_clip_lengths_the_causal_vae_cannot_take():
    vae = AutoencoderKLWan.from_config(EMBEDDED_SMALL)
    with pytest.raises(ConfigError, match="1 \\+ 4k"):
        encode_moments(vae, torch.zeros(1, 3, 6, 16, 16))

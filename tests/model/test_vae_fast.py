"""Whole-chunk Wan VAE decode equals diffusers' frame-by-frame `AutoencoderKLWan.decode` on random tiny configs."""

from __future__ import annotations

import time

import pytest
import torch
from diffusers import AutoencoderKLWan

from helios_core.errors import ConfigError
from helios_core.model.vae_fast import decode_chunk_whole, supports_whole_chunk

# float32 outputs in [-1, 1]: the two paths sum the same products in a different order (and the spatial upsampler
# folds kernel taps), so they agree to rounding, not bit for bit. Measured: about 5e-6.
FLOAT32_TOLERANCE = 1e-4

CONFIGS = {
    "base8_res1": {"base_dim": 8, "num_res_blocks": 1, "dim_mult": [1, 2, 2, 2]},
    "base8_res0": {"base_dim": 8, "num_res_blocks": 0, "dim_mult": [1, 2, 2, 2]},
    "base16_res1_mult1244": {"base_dim": 16, "num_res_blocks": 1, "dim_mult": [1, 2, 4, 4]},
    "base16_res0_mult1122": {"base_dim": 16, "num_res_blocks": 0, "dim_mult": [1, 1, 2, 2]},
    # Temporal upsampling in the first up block only (the mirror of downsampling late): other layer order.
    "base8_time_up_first": {
        "base_dim": 8,
        "num_res_blocks": 1,
        "dim_mult": [1, 2, 2, 2],
        "temperal_downsample": [False, False, True],
    },
}


def _vae(seed: int = 0, **overrides: object) -> AutoencoderKLWan:
    config = {"z_dim": 16, "temperal_downsample": [False, True, True], **overrides}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        vae = AutoencoderKLWan(**config).eval()
    finally:
        torch.random.set_rng_state(generator_state)
    return vae


def _latents(vae: AutoencoderKLWan, latent_frames: int, height: int = 3, width: int = 5, batch: int = 1):
    # Non-square latents so a swapped height/width in the upsamplers cannot pass.
    generator = torch.Generator().manual_seed(latent_frames)
    z_dim = vae.config.z_dim
    return torch.randn(batch, z_dim, latent_frames, height, width, generator=generator, dtype=vae.dtype)


def _assert_decodes_alike(vae: AutoencoderKLWan, latents: torch.Tensor, tolerance: float, **kwargs) -> float:
    with torch.no_grad():
        reference = vae.decode(latents).sample
    fast = decode_chunk_whole(vae, latents, **kwargs)
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    # Random weights still give a real picture: not all zeros, not all clamped (else equality would say little).
    assert reference.std() > 0.05 and (reference.abs() < 1).float().mean() > 0.5
    difference = (fast - reference).abs().max().item()
    assert difference <= tolerance, difference
    return difference


@pytest.mark.parametrize("latent_frames", [1, 2, 9])
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_whole_chunk_decode_equals_diffusers_decode(config_name: str, latent_frames: int) -> None:
    vae = _vae(**CONFIGS[config_name])
    assert supports_whole_chunk(vae)
    latents = _latents(vae, latent_frames)
    difference = _assert_decodes_alike(vae, latents, FLOAT32_TOLERANCE)
    print(f"{config_name} T={latent_frames}: max abs diff {difference:.2e}")


def test_the_equivalence_is_exact_up_to_float64_rounding() -> None:
    # float64 takes the generic F.conv3d path (oneDNN is only used for float32): the algebra itself must hold
    # to ~1e-12, so a wrong padding or frame order cannot hide inside float32 noise.
    vae = _vae(**CONFIGS["base8_res1"]).double()
    _assert_decodes_alike(vae, _latents(vae, 4), tolerance=1e-10)


@pytest.mark.parametrize("latent_frames_per_pass", [1, 2, 4])
def test_splitting_the_chunk_into_passes_keeps_the_output(latent_frames_per_pass: int) -> None:
    vae = _vae(**CONFIGS["base8_res1"])
    _assert_decodes_alike(vae, _latents(vae, 9), FLOAT32_TOLERANCE, latent_frames_per_pass=latent_frames_per_pass)


def test_a_batch_decodes_like_diffusers_with_and_without_slicing() -> None:
    vae = _vae(**CONFIGS["base8_res0"])
    latents = _latents(vae, 3, batch=2)
    _assert_decodes_alike(vae, latents, FLOAT32_TOLERANCE)
    vae.enable_slicing()
    _assert_decodes_alike(vae, latents, FLOAT32_TOLERANCE)


def test_wan22_style_residual_patchified_decoder_is_supported_too() -> None:
    # Wan 2.2 layout (residual up blocks with a duplicating shortcut, 2x2 patches) at toy width.
    vae = _vae(
        base_dim=8,
        decoder_base_dim=16,
        num_res_blocks=1,
        dim_mult=[1, 2, 2, 2],
        is_residual=True,
        patch_size=2,
        in_channels=12,
        out_channels=12,
    )
    assert supports_whole_chunk(vae)
    _assert_decodes_alike(vae, _latents(vae, 5), FLOAT32_TOLERANCE)


def test_tiling_and_foreign_models_are_refused_with_a_clear_error() -> None:
    vae = _vae(**CONFIGS["base8_res0"])
    vae.enable_tiling()
    assert not supports_whole_chunk(vae)
    with pytest.raises(ConfigError, match="tiling"):
        decode_chunk_whole(vae, _latents(vae, 2))
    assert not supports_whole_chunk(torch.nn.Conv3d(16, 3, 1))
    vae.disable_tiling()
    with pytest.raises(ConfigError, match="latent_frames_per_pass"):
        decode_chunk_whole(vae, _latents(vae, 2), latent_frames_per_pass=0)


def test_log_speed_side_by_side() -> None:
    # The speed-up is printed for humans, not asserted: timings on a shared 2-core machine are noise-prone.
    vae = _vae(**CONFIGS["base8_res1"])
    latents = _latents(vae, 9, height=4, width=4)
    timings, outputs = {}, {}
    decoders = {"diffusers": lambda: vae.decode(latents).sample, "whole": lambda: decode_chunk_whole(vae, latents)}
    with torch.no_grad():
        for name, decode in decoders.items():
            decode()  # warm-up (oneDNN primitive creation)
            start = time.perf_counter()
            outputs[name] = decode()
            timings[name] = time.perf_counter() - start
    print(
        f"tiny VAE, 9 latent frames at 32x32, {torch.get_num_threads()} thread(s): "
        f"diffusers {timings['diffusers']:.3f}s, whole-chunk {timings['whole']:.3f}s, "
        f"speed-up x{timings['diffusers'] / timings['whole']:.1f}"
    )
    assert (outputs["whole"] - outputs["diffusers"]).abs().max() <= FLOAT32_TOLERANCE


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU decode path needs a CUDA GPU")
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 2e-2), (torch.bfloat16, 0.1)])
def test_whole_chunk_decode_on_gpu_equals_diffusers_decode(dtype: torch.dtype, tolerance: float) -> None:
    """runtime.vae_decode=whole on a GPU (cuDNN convs; bf16 for runtime.vae_dtype=bf16): same pixels as diffusers'
    frame-by-frame decode within the dtype's rounding. fp32 is looser than on the CPU because cuDNN runs fp32 convs
    in TF32 by default (torch.backends.cudnn.allow_tf32): measured 0.0039 on an H100."""
    vae = _vae(**CONFIGS["base16_res1_mult1244"]).to("cuda", dtype)
    latents = _latents(vae, 9, height=6, width=10).to("cuda")
    _assert_decodes_alike(vae, latents, tolerance)

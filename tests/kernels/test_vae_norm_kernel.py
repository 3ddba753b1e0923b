"""The fused RMS norm + SiLU kernel of the whole-chunk VAE decode against its PyTorch reference (vae_fast's
`rms_norm_into` + F.silu, i.e. diffusers' WanRMS_norm then SiLU), written into a causally padded buffer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

from helios_core.model.vae_fast_ops import rms_norm_into

PAD = 2  # a time kernel of 3: the padded buffer has 2 frames before the activation


def _norm(channels: int, bias: bool, seed: int) -> WanRMS_norm:
    generator = torch.Generator().manual_seed(seed)
    norm = WanRMS_norm(channels, images=False, bias=bias)
    with torch.no_grad():  # away from the init values (ones, zeros), so a dropped gamma or bias shows
        norm.gamma.copy_(torch.randn(norm.gamma.shape, generator=generator) * 0.5 + 1.0)
        if bias:
            norm.bias.copy_(torch.randn(norm.bias.shape, generator=generator) * 0.5)
    return norm


def _activation(channels: int, dtype: torch.dtype, device: torch.device, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, channels, 3, 4, 5, generator=generator) * 3.0
    x[0, :, 1, 2, 3] = 0.0  # an all-zero pixel: F.normalize's 1e-12 floor, not a division by zero
    return x.to(device, dtype).contiguous(memory_format=torch.channels_last_3d)


def _padded_target(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A (B, C, PAD + T, H, W) channels_last_3d buffer filled with a marker, and its view after the pad frames."""
    batch, channels, frames, height, width = x.shape
    padded = torch.full((batch, channels, PAD + frames, height, width), 7.0, dtype=x.dtype, device=x.device)
    padded = padded.contiguous(memory_format=torch.channels_last_3d)
    return padded, padded[:, :, PAD:]


def _reference(x: torch.Tensor, norm: WanRMS_norm) -> torch.Tensor:
    out = torch.empty_like(x)
    rms_norm_into(x, norm, out)
    return F.silu(out)


def _fp32_math(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor | float) -> torch.Tensor:
    """The definition with every step in fp32 (what the kernel computes before its single store)."""
    channels = x.shape[1]
    bias = torch.as_tensor(bias, dtype=torch.float32, device=x.device).reshape(-1).expand(channels)
    y = F.normalize(x.float(), dim=1) * gain.float().view(1, -1, 1, 1, 1) + bias.view(1, -1, 1, 1, 1)
    return F.silu(y)


def _fused(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor | float | None) -> torch.Tensor:
    from helios_core.kernels.vae_norm import rms_norm_silu_into

    padded, out = _padded_target(x)
    assert rms_norm_silu_into(x, gain, bias, out) is out
    assert (padded[:, :, :PAD] == 7.0).all(), "the kernel wrote into the causal pad frames"
    return out


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("channels", [16, 96, 384])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_kernel_matches_the_reference_into_a_padded_view(triton_device, tol, channels, bias, dtype) -> None:
    norm = _norm(channels, bias, seed=channels).to(triton_device, dtype)
    x = _activation(channels, dtype, triton_device, seed=channels + 1)
    gain = norm.gamma.float().reshape(-1) * norm.scale
    fused = _fused(x, gain, norm.bias)
    assert fused.dtype == dtype
    reference = _reference(x, norm)
    assert reference.std() > 0.3  # a real spread of values, not a constant
    if dtype == torch.float32:
        torch.testing.assert_close(fused, reference, **tol(dtype))
        return
    # The bf16 reference rounds four times (normalised x, sqrt(C) * gamma, the product, the SiLU) where the kernel
    # rounds once: they may differ by a few bf16 steps (measured 0.047 on a value of 2.1 at C=384).
    torch.testing.assert_close(fused, reference, rtol=3e-2, atol=1e-2)
    # Against fp32 math the kernel is one output rounding away (two steps under the truncating interpreter).
    exact = _fp32_math(x, gain, norm.bias)
    torch.testing.assert_close(fused.float(), exact, rtol=2**-7, atol=1e-3)


@pytest.mark.parametrize("bias", [torch.tensor(0.5), 0.5, 0.0, None], ids=["0-dim", "float", "zero", "none"])
def test_scalar_and_absent_bias(triton_device, bias) -> None:
    x = _activation(24, torch.float32, triton_device, seed=3)
    gain = torch.linspace(0.5, 2.0, 24, device=triton_device)
    fused = _fused(x, gain, bias.to(triton_device) if isinstance(bias, torch.Tensor) else bias)
    torch.testing.assert_close(fused, _fp32_math(x, gain, 0.0 if bias is None else bias), rtol=1e-5, atol=1e-5)


def test_a_strided_input_view_is_read_through_its_strides(triton_device) -> None:
    # x itself a frame slice of a bigger channels-last buffer (as a padded buffer's tail would be).
    big = _activation(16, torch.float32, triton_device, seed=4)
    x = big[:, :, 1:]
    gain = torch.ones(16, device=triton_device) * 4.0
    fused = _fused(x, gain, None)
    torch.testing.assert_close(fused, _fp32_math(x, gain, 0.0), rtol=1e-5, atol=1e-5)


def test_unsupported_layouts_are_refused(triton_device) -> None:
    from helios_core.kernels.vae_norm import rms_norm_silu_into

    x = _activation(16, torch.float32, triton_device, seed=5)
    gain = torch.ones(16, device=triton_device)
    with pytest.raises(ValueError, match="contiguous channels"):
        rms_norm_silu_into(x.contiguous(), gain, None, torch.empty_like(x))
    with pytest.raises(ValueError, match="16 values"):
        rms_norm_silu_into(x, gain[:8], None, torch.empty_like(x))
    with pytest.raises(ValueError, match="same|share"):
        rms_norm_silu_into(x, gain, None, torch.empty_like(x[:, :, :1]))

"""The PyTorch references of the fused ops against diffusers' own Helios code, on the same inputs (CPU), and the
dispatcher's choice of implementation."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_helios import HeliosRotaryPosEmbed, apply_rotary_emb_transposed

from helios_core.errors import ConfigError
from helios_core.kernels import (
    KernelUnavailableError,
    modulated_layer_norm,
    modulated_layer_norm_reference,
    rms_norm,
    rms_norm_reference,
    rope_3d,
    rope_3d_reference,
)

DTYPES = [torch.float32, torch.bfloat16]


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_modulated_layer_norm_reference_is_the_blocks_expression(dtype: torch.dtype) -> None:
    x = _randn(2, 7, 48, dtype=dtype) * 3 + 1
    scale, shift = _randn(2, 7, 48, seed=1), _randn(2, 7, 48, seed=2)  # fp32, per token, as in a block
    norm1 = FP32LayerNorm(48, 1e-6, elementwise_affine=False)
    diffusers_out = (norm1(x.float()) * (1 + scale) + shift).type_as(x)
    assert torch.equal(modulated_layer_norm_reference(x, scale, shift, 1e-6), diffusers_out)
    per_sample = scale[:, :1]  # the (B, 1, D) modulation of a 3-D temb
    assert torch.equal(modulated_layer_norm_reference(x, per_sample, shift[:, :1], 1e-6),
                       (norm1(x.float()) * (1 + per_sample) + shift[:, :1]).type_as(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_form_matches_the_cross_attention_norm(dtype: torch.dtype) -> None:
    x = _randn(2, 5, 40, dtype=dtype)
    norm2 = FP32LayerNorm(40, 1e-6, elementwise_affine=True)
    with torch.no_grad():
        norm2.weight.copy_(_randn(40, seed=3))
        norm2.bias.copy_(_randn(40, seed=4))
    expected = norm2(x.float()).type_as(x)
    got = modulated_layer_norm_reference(x, norm2.weight, norm2.bias, 1e-6, offset=0.0)
    torch.testing.assert_close(got, expected, rtol=1e-6 if dtype == torch.float32 else 8e-3, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_reference_matches_torch_rmsnorm_across_heads(dtype: torch.dtype) -> None:
    x = _randn(2, 9, 64, dtype=dtype) * 4
    module = torch.nn.RMSNorm(64, eps=1e-6, elementwise_affine=True).to(dtype)
    with torch.no_grad():
        module.weight.copy_(_randn(64, seed=5))
    # bf16: torch may round x/rms to bf16 before the weight product; the reference rounds once (one step apart).
    torch.testing.assert_close(rms_norm_reference(x, module.weight, 1e-6), module(x),
                               rtol=1e-6 if dtype == torch.float32 else 8e-3, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_reference_is_diffusers_rotation_bit_for_bit(dtype: torch.dtype) -> None:
    x = _randn(2, 6, 3, 32, dtype=dtype)
    freqs = _randn(2, 6, 64, seed=6)  # arbitrary table: pairs need not repeat, angles need not be consistent
    assert torch.equal(rope_3d_reference(x, freqs), apply_rotary_emb_transposed(x, freqs))


def test_rope_reference_with_helios_position_table() -> None:
    """The real table (t, y, x bands of 12/10/10 channels, interleaved repeats), flattened as the model does."""
    rope = HeliosRotaryPosEmbed(rope_dim=(12, 10, 10), theta=10000.0)
    table = rope(frame_indices=torch.tensor([[3, 4]]), height=3, width=5, device=torch.device("cpu"))
    freqs = table.flatten(2).transpose(1, 2).contiguous()  # (1, 2*3*5, 64)
    x = _randn(1, 30, 2, 32, seed=7)
    out = rope_3d_reference(x, freqs)
    assert torch.equal(out, apply_rotary_emb_transposed(x, freqs))
    # A rotation: every pair keeps its length.
    torch.testing.assert_close(out.unflatten(-1, (-1, 2)).norm(dim=-1), x.unflatten(-1, (-1, 2)).norm(dim=-1))


def test_reference_gradients_agree_with_diffusers_rope() -> None:
    x = _randn(1, 4, 2, 16, seed=8).requires_grad_()
    freqs = _randn(1, 4, 32, seed=9)
    grad = _randn(1, 4, 2, 16, seed=10)
    (ours,) = torch.autograd.grad(rope_3d_reference(x, freqs), x, grad)
    (theirs,) = torch.autograd.grad(apply_rotary_emb_transposed(x, freqs), x, grad)
    assert torch.equal(ours, theirs)


def test_dispatch_on_cpu_without_interpreter_takes_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x, scale = _randn(1, 3, 16), _randn(1, 3, 16, seed=1)
    assert torch.equal(modulated_layer_norm(x, scale, scale), modulated_layer_norm_reference(x, scale, scale))
    assert torch.equal(rms_norm(x, scale[0, 0]), rms_norm_reference(x, scale[0, 0]))
    with pytest.raises(KernelUnavailableError, match="CUDA tensors|not importable"):
        rms_norm(x, None, impl="triton")


def test_dispatch_sends_shapes_the_kernels_do_not_cover_to_the_reference() -> None:
    x = _randn(3, 16)  # 2-D: the LayerNorm kernel takes (batch, seq, dim)
    scale = _randn(16, seed=1)
    assert torch.equal(modulated_layer_norm(x, scale, scale), modulated_layer_norm_reference(x, scale, scale))
    with pytest.raises(KernelUnavailableError, match="batch, seq, dim"):
        modulated_layer_norm(x, scale, scale, impl="triton")
    freqs = _randn(1, 2, 32, seed=2).requires_grad_()  # a differentiable table goes to the reference
    q = _randn(1, 2, 1, 16, seed=3)
    assert torch.equal(rope_3d(q, freqs), rope_3d_reference(q, freqs))
    with pytest.raises(ConfigError, match="impl must be one of"):
        rope_3d(q, freqs.detach(), impl="cuda")


def test_rms_norm_eps_none_is_torch_default() -> None:
    x = _randn(2, 8, seed=4)
    expected = torch.nn.RMSNorm(8, eps=None, elementwise_affine=False)(x)
    torch.testing.assert_close(rms_norm(x, None, eps=None, impl="torch"), expected)

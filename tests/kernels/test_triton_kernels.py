"""Each Triton kernel (impl="triton") against its PyTorch reference on the same inputs: outputs and every gradient
(x, scale, shift, weight; q and k), fp32 and bf16; then the whole fused model on the kernels against diffusers'
stock model. On CUDA when there is a GPU, else under Triton's CPU interpreter (see conftest.py); shapes are small so
the interpreter stays fast, plus a few rows at Helios' real widths. A wider bf16 model check runs on CUDA only."""

from __future__ import annotations

import pytest
import torch

from helios_core.kernels import (
    disable_fused_kernels,
    enable_fused_kernels,
    modulated_layer_norm,
    modulated_layer_norm_reference,
    rms_norm,
    rms_norm_reference,
    rope_3d,
    rope_3d_reference,
)

DTYPES = [torch.float32, torch.bfloat16]


def _randn(*shape: int, seed: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(device, dtype)


def _run(fn, inputs: list[torch.Tensor], grad: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output and gradients of every input that requires grad, for one upstream gradient."""
    leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
    out = fn(*leaves)
    wanted = [t for t in leaves if t.requires_grad]
    return out.detach(), list(torch.autograd.grad(out, wanted, grad))


def _compare(triton_fn, reference_fn, inputs: list[torch.Tensor], dtype: torch.dtype, tol, grad_tol=None) -> None:
    out = reference_fn(*inputs)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(99)).to(out.device, out.dtype)
    got, got_grads = _run(triton_fn, inputs, grad)
    want, want_grads = _run(reference_fn, inputs, grad)
    assert got.dtype == want.dtype and got.shape == want.shape
    torch.testing.assert_close(got, want, **tol(dtype))
    assert len(got_grads) == len(want_grads) > 0
    for mine, theirs in zip(got_grads, want_grads, strict=True):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        torch.testing.assert_close(mine, theirs, **(grad_tol or tol(theirs.dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["per_token", "per_sample", "shared"])
def test_modulated_layer_norm_kernel(triton_device, tol, dtype: torch.dtype, layout: str) -> None:
    batch, seq, width = 2, 5, 48
    x = _randn(batch, seq, width, seed=0, device=triton_device, dtype=dtype) * 2 + 0.5
    mod_shape = {"per_token": (batch, seq, width), "per_sample": (batch, 1, width), "shared": (width,)}[layout]
    scale = _randn(*mod_shape, seed=1, device=triton_device).requires_grad_()
    shift = _randn(*mod_shape, seed=2, device=triton_device).requires_grad_()
    _compare(lambda *a: modulated_layer_norm(*a, eps=1e-6, impl="triton"),
             lambda *a: modulated_layer_norm_reference(*a, eps=1e-6), [x.requires_grad_(), scale, shift], dtype, tol,
             # scale/shift grads are fp32 sums over rows of bf16-rounded products: reduction order only
             grad_tol={"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else None)


def test_modulated_layer_norm_reads_strided_modulation_views(triton_device, tol) -> None:
    """Helios passes chunks of a (B, S, 6, D) fp32 tensor and the output norm a slice of the sequence: no copies."""
    x_full = _randn(2, 9, 32, seed=3, device=triton_device, dtype=torch.bfloat16)
    x = x_full[:, -6:]  # non-contiguous over the batch, like HeliosOutputNorm's hidden_states[:, -L:]
    table = _randn(2, 6, 6, 32, seed=4, device=triton_device)
    shift, scale = table.unbind(2)[:2]
    assert not scale.is_contiguous()
    got = modulated_layer_norm(x, scale, shift, impl="triton")
    torch.testing.assert_close(got, modulated_layer_norm_reference(x, scale, shift), **tol(torch.bfloat16))


def test_layer_norm_affine_gradients_with_multi_row_partial_sums(triton_device, monkeypatch) -> None:
    """norm2's weight/bias gradients are sums over all tokens: force several rows per partial sum (ROWS > 1)."""
    from helios_core.kernels.backend import kernel_module

    monkeypatch.setattr(kernel_module(), "LAYER_NORM_PARTIALS", 3)
    x = _randn(2, 11, 24, seed=5, device=triton_device).requires_grad_()
    weight = _randn(24, seed=6, device=triton_device).requires_grad_()
    bias = _randn(24, seed=7, device=triton_device).requires_grad_()
    _compare(lambda *a: modulated_layer_norm(*a, offset=0.0, impl="triton"),
             lambda *a: modulated_layer_norm_reference(*a, offset=0.0), [x, weight, bias], torch.float32,
             lambda dtype: {"rtol": 1e-5, "atol": 1e-5}, grad_tol={"rtol": 1e-4, "atol": 1e-4})


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_kernel(triton_device, tol, dtype: torch.dtype, monkeypatch) -> None:
    from helios_core.kernels.backend import kernel_module

    monkeypatch.setattr(kernel_module(), "RMS_NORM_PARTIALS", 4)  # 14 rows -> 4 rows per weight-gradient partial
    x = (_randn(2, 7, 64, seed=8, device=triton_device, dtype=dtype) * 3).requires_grad_()
    weight = _randn(64, seed=9, device=triton_device, dtype=dtype).requires_grad_()
    _compare(lambda *a: rms_norm(*a, eps=1e-6, impl="triton"), lambda *a: rms_norm_reference(*a, eps=1e-6),
             [x, weight], dtype, tol, grad_tol={"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else None)


def test_rms_norm_kernel_without_weight(triton_device, tol) -> None:
    x = _randn(3, 40, seed=10, device=triton_device).requires_grad_()
    _compare(lambda a: rms_norm(a, None, impl="triton"), lambda a: rms_norm_reference(a, None), [x], torch.float32, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("freqs_batch", [2, 1])
def test_rope_kernel(triton_device, tol, dtype: torch.dtype, freqs_batch: int) -> None:
    q = _randn(2, 5, 3, 32, seed=11, device=triton_device, dtype=dtype).requires_grad_()
    freqs = _randn(freqs_batch, 5, 64, seed=12, device=triton_device)  # arbitrary, like pooled history tables
    _compare(lambda a: rope_3d(a, freqs, impl="triton"), lambda a: rope_3d_reference(a, freqs), [q], dtype, tol)


def test_rope_kernel_on_a_head_split_view(triton_device, tol) -> None:
    """Keys arrive as `key.unflatten(2, (heads, -1))` of a projection, and CP shards freqs along the sequence."""
    flat = _randn(1, 8, 2 * 3 * 16, seed=13, device=triton_device, dtype=torch.bfloat16)
    k = flat[..., : 3 * 16].unflatten(2, (3, 16))  # a strided view: rows 96 apart
    freqs = _randn(1, 16, 32, seed=14, device=triton_device)[:, 8:]
    torch.testing.assert_close(rope_3d(k, freqs, impl="triton"), rope_3d_reference(k, freqs), **tol(torch.bfloat16))


def test_helios_widths(triton_device, tol) -> None:
    """One short sequence at the 14B model's real widths: rows of 5,120, 40 heads x 128, bf16."""
    x = _randn(1, 3, 5120, seed=15, device=triton_device, dtype=torch.bfloat16)
    scale, shift = _randn(1, 3, 5120, seed=16, device=triton_device), _randn(1, 3, 5120, seed=17, device=triton_device)
    weight = _randn(5120, seed=18, device=triton_device, dtype=torch.bfloat16)
    freqs = _randn(1, 3, 256, seed=19, device=triton_device)
    bf16 = tol(torch.bfloat16)
    torch.testing.assert_close(modulated_layer_norm(x, scale, shift, impl="triton"),
                               modulated_layer_norm_reference(x, scale, shift), **bf16)
    torch.testing.assert_close(rms_norm(x, weight, impl="triton"), rms_norm_reference(x, weight), **bf16)
    heads = x.unflatten(2, (40, 128))
    torch.testing.assert_close(rope_3d(heads, freqs, impl="triton"), rope_3d_reference(heads, freqs), **bf16)


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.float() - want.float()).norm() / want.float().norm()).item()


def test_fused_triton_model_matches_stock(triton_device, tiny_helios, helios_inputs) -> None:
    model = tiny_helios(seed=7, num_layers=1).to(triton_device)
    inputs = helios_inputs(batch=1, size=4, frames=1, seed=3, device=triton_device)
    with torch.no_grad():
        stock = model(**inputs)[0]
        fused = enable_fused_kernels(model, impl="triton")(**inputs)[0]
        restored = disable_fused_kernels(model)(**inputs)[0]
    torch.testing.assert_close(fused, stock, rtol=1e-4, atol=1e-4)
    assert torch.equal(restored, stock)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 model-level check at real launch sizes needs CUDA")
def test_fused_bf16_model_forward_and_backward_on_gpu(tiny_helios, helios_inputs) -> None:
    """8 heads x 64, 2 layers, bf16 weights with the fp32-kept modules, 2 x 1,872 tokens: within bf16 noise."""
    from helios_core.bench.speed_models import keep_modules_in_fp32

    model = tiny_helios(seed=8, num_attention_heads=8, attention_head_dim=64, rope_dim=(24, 20, 20), ffn_dim=512)
    model = model.to("cuda", torch.bfloat16)
    keep_modules_in_fp32(model)
    inputs = helios_inputs(batch=2, size=32, frames=5, seed=4, device="cuda", dtype=torch.bfloat16)
    target = torch.randn(2, 16, 5, 32, 32, device="cuda", dtype=torch.bfloat16)

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        latents = inputs["hidden_states"].clone().requires_grad_()
        out = model(**{**inputs, "hidden_states": latents})[0]
        (out.float() * target.float()).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return out.detach(), {**grads, "latents": latents.grad}

    stock_out, stock_grads = run()
    enable_fused_kernels(model, impl="triton")
    fused_out, fused_grads = run()
    disable_fused_kernels(model)
    assert _relative_error(fused_out, stock_out) < 1e-2
    assert stock_grads.keys() == fused_grads.keys()
    for name in ("latents", "blocks.0.attn1.norm_q.weight", "blocks.1.scale_shift_table", "blocks.0.norm2.weight",
                 "norm_out.scale_shift_table", "blocks.0.attn1.to_q.weight"):
        assert _relative_error(fused_grads[name], stock_grads[name]) < 3e-2, name

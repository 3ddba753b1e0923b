"""The three fused ops, each as a plain PyTorch reference, an autograd.Function around its Triton kernels
(triton_kernels.py, forward and backward) and a dispatcher that picks one (backend.py: impl auto / torch / triton).

1. modulated_layer_norm(x, scale, shift): y = LN(x) * (offset + scale) + shift, LN in fp32 without affine. Every
   Helios block normalises this way twice (norm1 before self-attention, norm3 before the FFN) with per-token scale
   and shift from the timestep embedding, and the output norm once more; diffusers writes it as
   `(FP32LayerNorm(x.float()) * (1 + scale) + shift).type_as(x)`, about six passes over fp32 copies. offset=0
   turns it into an affine fp32 LayerNorm (weight, bias as scale, shift): the block's norm2.
2. rms_norm(x, weight): x * rsqrt(mean(x^2) + eps) * weight, the q/k norm (`torch.nn.RMSNorm(heads * head_dim)`,
   across all heads, eps 1e-6). Computed in fp32 and rounded once (PyTorch's CPU composite rounds twice on bf16).
3. rope_3d(x, freqs): diffusers' `apply_rotary_emb_transposed`. x is (B, S, H, Dh) and channels pair up
   interleaved, (x[2i], x[2i+1]); freqs is (B, S, 2 Dh) fp32 as HeliosRotaryPosEmbed builds it: Dh cosines then Dh
   sines ([t | y | x] bands, 44 + 42 + 42 for the 14B model, each value repeated twice); pair i reads cos[2i] and
   sin[2i + 1]. History tokens carry average-pooled frequencies, so freqs is read as given, never assumed to follow
   a closed form. Gradients flow to x only (freqs is a no_grad position table).

All arithmetic is fp32; outputs are cast once to x's dtype; gradients come back in each input's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helios_core.kernels.backend import MAX_ROW, kernel_module, use_triton

MAX_HEAD_DIM = 1024


def _unit_last(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(-1) == 1 else t.contiguous()


def _as_3d(t: torch.Tensor) -> torch.Tensor:
    return t[(None,) * (3 - t.ndim)]


# -- 1. modulated LayerNorm ---------------------------------------------------------------------------------------
def modulated_layer_norm_reference(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-6,
                                   offset: float = 1.0) -> torch.Tensor:
    """The definition: fp32 LayerNorm over the last axis (no affine), fp32 modulation, one cast to x's dtype."""
    normed = F.layer_norm(x.float(), (x.shape[-1],), eps=eps)
    return (normed * (offset + scale.float()) + shift.float()).to(x.dtype)


def _layer_norm_problem(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> str | None:
    """Why the kernel cannot take these shapes (the reference takes any broadcastable ones), or None."""
    if x.ndim != 3 or x.shape[-1] > MAX_ROW:
        return f"the kernel takes x (batch, seq, dim <= {MAX_ROW}), got {tuple(x.shape)}"
    if scale.ndim > 3 or _as_3d(scale).shape != _as_3d(shift).shape:
        return f"scale and shift must share one shape of at most 3 dims, got {tuple(scale.shape)}, {tuple(shift.shape)}"
    sizes = zip(_as_3d(scale).shape, x.shape, strict=True)
    if scale.shape[-1] != x.shape[-1] or any(n not in (1, m) for n, m in sizes):
        return f"scale/shift {tuple(scale.shape)} must broadcast to x {tuple(x.shape)} with one value per channel"
    return None


class _ModulatedLayerNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale, shift, eps, offset):  # noqa: ANN001, ANN205 - autograd.Function signature
        x, scale, shift = _unit_last(x), _unit_last(scale), _unit_last(shift)
        y, mean, rstd = kernel_module().layer_norm_forward(x, scale, shift, eps, offset)
        ctx.save_for_backward(x, scale, mean, rstd)
        ctx.offset, ctx.dtypes = offset, (scale.dtype, shift.dtype)
        return y

    @staticmethod
    def backward(ctx, dy):  # noqa: ANN001, ANN205
        x, scale, mean, rstd = ctx.saved_tensors
        need_x, need_scale, need_shift = ctx.needs_input_grad[:3]
        dx, dscale, dshift = kernel_module().layer_norm_backward(_unit_last(dy), x, scale, mean, rstd, ctx.offset,
                                                                  need_scale or need_shift)
        return (dx if need_x else None, dscale.to(ctx.dtypes[0]) if need_scale else None,
                dshift.to(ctx.dtypes[1]) if need_shift else None, None, None)


def modulated_layer_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-6,
                         offset: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """LN(x) * (offset + scale) + shift over the last axis of x (batch, seq, dim), returned in x's dtype.
    scale and shift broadcast against x: (batch, seq, dim) per token, (batch, 1, dim) per sample, (dim,) shared.
    Differentiable in x, scale and shift on both paths."""
    if not use_triton(impl, x, scale, shift, reason=_layer_norm_problem(x, scale, shift)):
        return modulated_layer_norm_reference(x, scale, shift, eps, offset)
    return _ModulatedLayerNormFn.apply(x, _as_3d(scale), _as_3d(shift), float(eps), float(offset))


# -- 2. RMSNorm -----------------------------------------------------------------------------------------------------
def rms_norm_reference(x: torch.Tensor, weight: torch.Tensor | None, eps: float = 1e-6) -> torch.Tensor:
    """The definition: fp32 mean of squares over the last axis, fp32 scaling by the weight, one cast to x's dtype."""
    wide = x.float()
    y = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)
    return (y if weight is None else y * weight.float()).to(x.dtype)


def _rms_norm_problem(x: torch.Tensor, weight: torch.Tensor | None) -> str | None:
    if x.ndim < 1 or x.shape[-1] > MAX_ROW:
        return f"the kernel takes rows of at most {MAX_ROW} values, got shape {tuple(x.shape)}"
    if weight is not None and tuple(weight.shape) != (x.shape[-1],):
        return f"weight must have shape ({x.shape[-1]},), got {tuple(weight.shape)}"
    return None


class _RMSNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps):  # noqa: ANN001, ANN205 - autograd.Function signature
        rows = _unit_last(x.reshape(-1, x.shape[-1]))
        weight = None if weight is None else weight.contiguous()
        y, rstd = kernel_module().rms_norm_forward(rows, weight, eps)
        ctx.save_for_backward(rows, weight, rstd)
        ctx.shape = x.shape
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy):  # noqa: ANN001, ANN205
        rows, weight, rstd = ctx.saved_tensors
        need_weight = weight is not None and ctx.needs_input_grad[1]
        dy_rows = _unit_last(dy.reshape(-1, dy.shape[-1]))
        dx, dweight = kernel_module().rms_norm_backward(dy_rows, rows, weight, rstd, need_weight)
        return dx.view(ctx.shape), (dweight.to(weight.dtype) if need_weight else None), None


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float | None = 1e-6,
             impl: str = "auto") -> torch.Tensor:
    """RMSNorm over the last axis of x, in fp32, returned in x's dtype; eps None means the dtype's machine epsilon,
    as `torch.nn.RMSNorm(eps=None)`. Differentiable in x and weight on both paths."""
    if eps is None:
        eps = torch.finfo(x.dtype).eps
    if not use_triton(impl, x, weight, reason=_rms_norm_problem(x, weight)):
        return rms_norm_reference(x, weight, eps)
    return _RMSNormFn.apply(x, weight, float(eps))


# -- 3. 3-D RoPE ----------------------------------------------------------------------------------------------------
def rope_3d_reference(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """The definition, vectorised over all pairs: x (B, S, H, Dh), freqs (B or 1, S, 2 Dh)."""
    head_dim = x.shape[-1]
    cos = freqs[..., None, 0:head_dim:2]  # (B, S, 1, Dh/2): the even cosines
    sin = freqs[..., None, head_dim + 1::2]  # the odd sines
    x_even, x_odd = x[..., 0::2].float(), x[..., 1::2].float()
    rotated = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)


def _rope_problem(x: torch.Tensor, freqs: torch.Tensor) -> str | None:
    if x.ndim != 4 or x.shape[-1] % 2 or x.shape[-1] > MAX_HEAD_DIM:
        return f"the kernel takes x (batch, seq, heads, even head_dim <= {MAX_HEAD_DIM}), got {tuple(x.shape)}"
    batch, seq, _, head_dim = x.shape
    if freqs.ndim != 3 or freqs.shape[0] not in (1, batch) or tuple(freqs.shape[1:]) != (seq, 2 * head_dim):
        return f"freqs must be ({batch} or 1, {seq}, {2 * head_dim}), got {tuple(freqs.shape)}"
    if freqs.requires_grad:
        return "the kernel does not differentiate the frequency table"
    return None


class _Rope3dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, freqs):  # noqa: ANN001, ANN205 - autograd.Function signature
        freqs = _unit_last(freqs)
        ctx.save_for_backward(freqs)
        return kernel_module().rope_rotate(_unit_last(x), freqs)

    @staticmethod
    def backward(ctx, dy):  # noqa: ANN001, ANN205
        (freqs,) = ctx.saved_tensors
        return kernel_module().rope_rotate(_unit_last(dy), freqs, inverse=True), None


def rope_3d(x: torch.Tensor, freqs: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """x rotated by the per-token angles in freqs, a new tensor in x's dtype, differentiable in x. freqs is
    `rotary_emb` exactly as a diffusers Helios block receives it, (B, S, 2 Dh)."""
    if not use_triton(impl, x, freqs, reason=_rope_problem(x, freqs)):
        return rope_3d_reference(x, freqs)
    return _Rope3dFn.apply(x, freqs)

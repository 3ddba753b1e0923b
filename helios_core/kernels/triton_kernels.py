"""Triton kernels (forward and backward) behind ops.py. Imported lazily, on the first Triton call (backend.py says
why). All arithmetic is fp32; outputs are stored once in the input's dtype.

Modulated LayerNorm, y = LN(x) * (offset + scale) + shift: x (B, S, D) with unit stride along D; scale and shift
(b1, s1, D) with b1 in {1, B} and s1 in {1, S}, passed with stride 0 along a broadcast axis, so Helios' per-token
modulation views (chunks of a (B, S, 6, D) tensor) are read in place, never copied. Forward: one program per token
holds the whole row, writes y and saves mean/rstd (8 bytes a row). Backward: dx = rstd * (g - mean(g) - xhat *
mean(g * xhat)) with g = dy * (offset + scale); the scale/shift gradients (dy * xhat, dy) are written per row when
the modulation is per token (Helios' case, no reduction), else folded over ROWS rows per program into partial sums
that PyTorch adds up (a deterministic two-stage reduction, no atomics).

RMSNorm, y = x * rsqrt(mean(x^2) + eps) * weight over rows of x (N, D): the same pattern, rstd saved, weight
gradient through partial sums.

RoPE on x (B, S, H, Dh): one program rotates BLOCK_H heads of one token, loading the row as (heads, pairs, 2),
splitting even/odd channels, rotating with cos = freqs[2i] and sin = freqs[Dh + 2i + 1] and joining them back. The
rotation is orthogonal, so its backward is the same kernel with the sine negated.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

LAYER_NORM_PARTIALS = 256  # at most this many partial-sum rows per sample for a broadcast scale/shift gradient
RMS_NORM_PARTIALS = 512  # at most this many partial-sum rows for the RMSNorm weight gradient


def launch_settings(width: int) -> tuple[int, int]:
    """(power-of-two block covering a row of `width`, warps): one warp per 256 elements, 1 to 16."""
    block = triton.next_power_of_2(width)
    return block, min(max(block // 256, 1), 16)


def partial_rows(rows: int, max_partials: int) -> int:
    """Rows each program folds into one partial sum of a parameter gradient, so that at most `max_partials`
    partial rows are written and then summed by PyTorch (a two-stage reduction without atomics)."""
    return max(1, -(-rows // max_partials))


# -- modulated LayerNorm -----------------------------------------------------------------------------------------
@triton.jit
def _layer_norm_forward_kernel(X, Y, SCALE, SHIFT, MEAN, RSTD, S, D, x_sb, x_ss, y_sb, y_ss, sc_sb, sc_ss,
                               sh_sb, sh_ss, eps, offset, BLOCK: tl.constexpr):
    s = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    live = cols < D
    x = tl.load(X + b * x_sb + s * x_ss + cols, mask=live, other=0.0).to(tl.float32)
    mean = tl.sum(x, axis=0) / D
    centred = tl.where(live, x - mean, 0.0)
    rstd = tl.rsqrt(tl.sum(centred * centred, axis=0) / D + eps)
    scale = tl.load(SCALE + b * sc_sb + s * sc_ss + cols, mask=live, other=0.0).to(tl.float32)
    shift = tl.load(SHIFT + b * sh_sb + s * sh_ss + cols, mask=live, other=0.0).to(tl.float32)
    y = centred * rstd * (offset + scale) + shift
    tl.store(Y + b * y_sb + s * y_ss + cols, y.to(Y.dtype.element_ty), mask=live)
    tl.store(MEAN + b * S + s, mean)
    tl.store(RSTD + b * S + s, rstd)


@triton.jit
def _layer_norm_backward_kernel(X, DY, DX, SCALE, MEAN, RSTD, DSCALE, DSHIFT, S, D, x_sb, x_ss, dy_sb, dy_ss,
                                m_sb, m_ss, offset, ROWS: tl.constexpr, BLOCK: tl.constexpr,
                                PARAM_GRAD: tl.constexpr, PER_ROW: tl.constexpr):
    chunk = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    n_chunks = tl.num_programs(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    live = cols < D
    acc_scale = tl.zeros([BLOCK], dtype=tl.float32)
    acc_shift = tl.zeros([BLOCK], dtype=tl.float32)
    for r in range(ROWS):
        s = chunk * ROWS + r
        if s < S:
            x = tl.load(X + b * x_sb + s * x_ss + cols, mask=live, other=0.0).to(tl.float32)
            dy = tl.load(DY + b * dy_sb + s * dy_ss + cols, mask=live, other=0.0).to(tl.float32)
            scale = tl.load(SCALE + b * m_sb + s * m_ss + cols, mask=live, other=0.0).to(tl.float32)
            mean = tl.load(MEAN + b * S + s)
            rstd = tl.load(RSTD + b * S + s)
            xhat = tl.where(live, (x - mean) * rstd, 0.0)
            g = dy * (offset + scale)
            dx = (g - xhat * (tl.sum(g * xhat, axis=0) / D) - tl.sum(g, axis=0) / D) * rstd
            # DX is contiguous (B, S, D).
            tl.store(DX + (b * S + s) * D + cols, dx.to(DX.dtype.element_ty), mask=live)
            if PARAM_GRAD:
                if PER_ROW:
                    tl.store(DSCALE + (b * S + s) * D + cols, dy * xhat, mask=live)
                    tl.store(DSHIFT + (b * S + s) * D + cols, dy, mask=live)
                else:
                    acc_scale += dy * xhat
                    acc_shift += dy
    if PARAM_GRAD and not PER_ROW:
        tl.store(DSCALE + (b * n_chunks + chunk) * D + cols, acc_scale, mask=live)
        tl.store(DSHIFT + (b * n_chunks + chunk) * D + cols, acc_shift, mask=live)


def _mod_strides(mod: torch.Tensor) -> tuple[int, int]:
    """Batch and sequence strides of a (b1, s1, D) modulation tensor, 0 along a broadcast (size-1) axis."""
    return (mod.stride(0) if mod.shape[0] > 1 else 0), (mod.stride(1) if mod.shape[1] > 1 else 0)


def layer_norm_forward(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float,
                       offset: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y, mean, rstd for x (B, S, D); scale and shift share one (b1, s1, D) shape (checked by the caller)."""
    batch, seq, width = x.shape
    y = torch.empty((batch, seq, width), dtype=x.dtype, device=x.device)
    mean = torch.empty((batch, seq), dtype=torch.float32, device=x.device)
    rstd = torch.empty_like(mean)
    if x.numel() == 0:
        return y, mean, rstd
    block, warps = launch_settings(width)
    _layer_norm_forward_kernel[(seq, batch)](x, y, scale, shift, mean, rstd, seq, width, x.stride(0), x.stride(1),
                                             y.stride(0), y.stride(1), *_mod_strides(scale), *_mod_strides(shift),
                                             eps, offset, BLOCK=block, num_warps=warps)
    return y, mean, rstd


def layer_norm_backward(dy: torch.Tensor, x: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor,
                        rstd: torch.Tensor, offset: float,
                        param_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """dx (like x), and fp32 gradients of scale and shift shaped like `scale` (None when not `param_grad`)."""
    batch, seq, width = x.shape
    dx = torch.empty((batch, seq, width), dtype=x.dtype, device=x.device)
    per_row = scale.shape[1] == seq
    # One row per program unless a broadcast scale/shift gradient must be summed over the sequence.
    rows = partial_rows(seq, LAYER_NORM_PARTIALS) if param_grad and not per_row else 1
    n_chunks = -(-seq // rows)
    grad_shape = (batch, seq if per_row else n_chunks, width)
    dscale = torch.empty(grad_shape if param_grad else (1,), dtype=torch.float32, device=x.device)
    dshift = torch.empty_like(dscale)
    if x.numel() > 0:
        m_sb, m_ss = _mod_strides(scale)
        block, warps = launch_settings(width)
        _layer_norm_backward_kernel[(n_chunks, batch)](x, dy, dx, scale, mean, rstd, dscale, dshift, seq, width,
                                                       x.stride(0), x.stride(1), dy.stride(0), dy.stride(1), m_sb,
                                                       m_ss, offset, ROWS=rows, BLOCK=block, PARAM_GRAD=param_grad,
                                                       PER_ROW=per_row, num_warps=warps)
    if not param_grad:
        return dx, None, None
    if x.numel() == 0:
        dscale.zero_()
        dshift.zero_()
    if not per_row:  # partial sums -> one row per sample
        dscale, dshift = dscale.sum(1, keepdim=True), dshift.sum(1, keepdim=True)
    if scale.shape[0] == 1 and batch > 1:
        dscale, dshift = dscale.sum(0, keepdim=True), dshift.sum(0, keepdim=True)
    return dx, dscale, dshift


# -- RMSNorm -----------------------------------------------------------------------------------------------------
@triton.jit
def _rms_norm_forward_kernel(X, W, Y, RSTD, D, x_stride, eps, BLOCK: tl.constexpr, HAS_WEIGHT: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    live = cols < D
    x = tl.load(X + row * x_stride + cols, mask=live, other=0.0).to(tl.float32)
    rstd = tl.rsqrt(tl.sum(x * x, axis=0) / D + eps)
    y = x * rstd
    if HAS_WEIGHT:
        y = y * tl.load(W + cols, mask=live, other=0.0).to(tl.float32)
    tl.store(Y + row * D + cols, y.to(Y.dtype.element_ty), mask=live)
    tl.store(RSTD + row, rstd)


@triton.jit
def _rms_norm_backward_kernel(X, W, DY, DX, RSTD, DW, N, D, x_stride, dy_stride, ROWS: tl.constexpr,
                              BLOCK: tl.constexpr, HAS_WEIGHT: tl.constexpr, WEIGHT_GRAD: tl.constexpr):
    chunk = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    live = cols < D
    if HAS_WEIGHT:
        w = tl.load(W + cols, mask=live, other=0.0).to(tl.float32)
    else:
        w = tl.full([BLOCK], 1.0, dtype=tl.float32)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for r in range(ROWS):
        row = chunk * ROWS + r
        if row < N:
            x = tl.load(X + row * x_stride + cols, mask=live, other=0.0).to(tl.float32)
            dy = tl.load(DY + row * dy_stride + cols, mask=live, other=0.0).to(tl.float32)
            rstd = tl.load(RSTD + row)
            xhat = x * rstd
            g = dy * w
            dx = (g - xhat * (tl.sum(g * xhat, axis=0) / D)) * rstd
            tl.store(DX + row * D + cols, dx.to(DX.dtype.element_ty), mask=live)
            if WEIGHT_GRAD:
                acc += dy * xhat
    if WEIGHT_GRAD:
        tl.store(DW + chunk * D + cols, acc, mask=live)


def rms_norm_forward(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """y (N, D) contiguous in x's dtype and rstd (N,) fp32, for x (N, D) with unit stride along D."""
    rows, width = x.shape
    y = torch.empty((rows, width), dtype=x.dtype, device=x.device)
    rstd = torch.empty((rows,), dtype=torch.float32, device=x.device)
    if rows:
        block, warps = launch_settings(width)
        _rms_norm_forward_kernel[(rows,)](x, x if weight is None else weight, y, rstd, width, x.stride(0), eps,
                                          BLOCK=block, HAS_WEIGHT=weight is not None, num_warps=warps)
    return y, rstd


def rms_norm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None, rstd: torch.Tensor,
                      weight_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """dx (N, D) in x's dtype and, when `weight_grad`, the fp32 weight gradient (D,)."""
    rows, width = x.shape
    dx = torch.empty((rows, width), dtype=x.dtype, device=x.device)
    # A frozen weight (LoRA training) needs no reduction: then one row per program, the most parallel layout.
    per_program = partial_rows(rows, RMS_NORM_PARTIALS) if weight_grad else 1
    n_chunks = -(-rows // per_program)
    partials = torch.zeros((max(n_chunks, 1), width) if weight_grad else (1,), dtype=torch.float32, device=x.device)
    if rows:
        block, warps = launch_settings(width)
        _rms_norm_backward_kernel[(n_chunks,)](x, x if weight is None else weight, dy, dx, rstd, partials, rows,
                                               width, x.stride(0), dy.stride(0), ROWS=per_program, BLOCK=block,
                                               HAS_WEIGHT=weight is not None, WEIGHT_GRAD=weight_grad,
                                               num_warps=warps)
    return dx, (partials.sum(0) if weight_grad else None)


# -- RoPE --------------------------------------------------------------------------------------------------------
@triton.jit
def _rope_kernel(X, FREQS, Y, S, H, HALF, x_sb, x_ss, x_sh, f_sb, f_ss, SIGN: tl.constexpr, BLOCK_H: tl.constexpr,
                 BLOCK_P: tl.constexpr):
    s = tl.program_id(0).to(tl.int64)
    b = tl.program_id(2).to(tl.int64)
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    pairs = tl.arange(0, BLOCK_P)
    two = tl.arange(0, 2)
    live = (heads[:, None, None] < H) & (pairs[None, :, None] < HALF) & (two[None, None, :] < 2)
    inner = pairs[None, :, None] * 2 + two[None, None, :]
    x = tl.load(X + b * x_sb + s * x_ss + heads[:, None, None].to(tl.int64) * x_sh + inner, mask=live, other=0.0)
    x_even, x_odd = tl.split(x.to(tl.float32))
    row = FREQS + b * f_sb + s * f_ss
    pair_live = pairs < HALF
    cos = tl.load(row + 2 * pairs, mask=pair_live, other=0.0).to(tl.float32)[None, :]
    sin = SIGN * tl.load(row + 2 * HALF + 2 * pairs + 1, mask=pair_live, other=0.0).to(tl.float32)[None, :]
    y = tl.join(x_even * cos - x_odd * sin, x_even * sin + x_odd * cos)
    # Y is contiguous (B, S, H, Dh).
    out = ((b * S + s) * H + heads[:, None, None].to(tl.int64)) * (2 * HALF) + inner
    tl.store(Y + out, y.to(Y.dtype.element_ty), mask=live)


def rope_rotate(x: torch.Tensor, freqs: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Rotated copy of x (B, S, H, Dh) (unit stride along Dh), contiguous, in x's dtype. freqs: (b1, S, 2 Dh) with
    unit last stride, b1 in {1, B}. `inverse` rotates by minus the angle (the gradient of the forward rotation)."""
    batch, seq, heads, head_dim = x.shape
    y = torch.empty((batch, seq, heads, head_dim), dtype=x.dtype, device=x.device)
    if x.numel() == 0:
        return y
    block_h = min(8, triton.next_power_of_2(heads))
    block_p = triton.next_power_of_2(head_dim // 2)
    warps = min(max(block_h * block_p * 2 // 256, 1), 8)
    f_sb = freqs.stride(0) if freqs.shape[0] > 1 else 0
    grid = (seq, triton.cdiv(heads, block_h), batch)
    _rope_kernel[grid](x, freqs, y, seq, heads, head_dim // 2, x.stride(0), x.stride(1), x.stride(2), f_sb,
                       freqs.stride(1), SIGN=-1.0 if inverse else 1.0, BLOCK_H=block_h, BLOCK_P=block_p,
                       num_warps=warps)
    return y

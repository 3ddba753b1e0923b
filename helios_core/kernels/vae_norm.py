"""Fused RMS norm + SiLU for the whole-chunk Wan VAE decode (helios_core.model.vae_fast): one Triton kernel.

Every residual block of the Wan decoder normalises over channels (diffusers' WanRMS_norm: F.normalize, times
sqrt(C) * gamma, plus an optional bias) and then applies SiLU, on its largest activations (33 x 384 x 640 x 96 at
the last stage, 1.56 GB in bf16). The PyTorch reference (`vae_fast_ops.rms_norm_into`, then F.silu) passes over that
tensor 5-6 times (a fp32 copy, the norm, the copy back, the scale, the bias, the SiLU); this kernel reads x once and
writes silu(norm(x)) once, straight into the causal conv's padded input buffer.

Layout: x (B, C, T, H, W) with channels contiguous (channels_last_3d), so one pixel's C channels are one
contiguous row; `out` has x's shape and unit channel stride too but its own B/T/H/W strides (it is the view
`padded[:, :, pad:]` of a buffer with `pad` more frames). A program takes ROWS pixel rows as a (ROWS, BLOCK_C)
tile: for small C (96 at the largest stage, 16 in tiny test VAEs) a row is too short to keep a program busy.
All arithmetic is fp32; y is stored once in out's dtype. Inference only: there is no backward.

Imported lazily (it imports triton), on the first fused call; see helios_core/kernels/backend.py for why.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_CHANNELS = 1024  # a whole row sits in one program's registers; the Wan decoder's widest is 384
TILE_ELEMENTS = 4096  # ROWS * BLOCK_C per program: large enough to hide memory latency, small enough not to spill


@triton.jit
def _rms_norm_silu_kernel(X, GAMMA, BIAS, OUT, N, C, T, H, W, x_sb, x_st, x_sh, x_sw, o_sb, o_st, o_sh, o_sw,
                          eps, ROWS: tl.constexpr, BLOCK_C: tl.constexpr, HAS_BIAS: tl.constexpr):
    # Pixel row n = ((b * T + t) * H + h) * W + w, split in int32 (the wrapper keeps N below 2**31; 64-bit division
    # is several times slower), then each tensor is addressed through its own strides in int64.
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK_C)
    w = (rows % W).to(tl.int64)
    h = ((rows // W) % H).to(tl.int64)
    t = ((rows // (W * H)) % T).to(tl.int64)
    b = (rows // (W * H * T)).to(tl.int64)
    x_row = b * x_sb + t * x_st + h * x_sh + w * x_sw
    o_row = b * o_sb + t * o_st + h * o_sh + w * o_sw
    live = (rows[:, None] < N) & (cols[None, :] < C)
    x = tl.load(X + x_row[:, None] + cols[None, :], mask=live, other=0.0).to(tl.float32)
    # F.normalize: x / max(||x||_2, eps), as one reciprocal per row (within an fp32 rounding of the quotient).
    inverse = 1.0 / tl.maximum(tl.sqrt(tl.sum(x * x, axis=1)), eps)
    y = x * inverse[:, None]
    gamma = tl.load(GAMMA + cols, mask=cols < C, other=0.0).to(tl.float32)
    y = y * gamma[None, :]
    if HAS_BIAS:
        y = y + tl.load(BIAS + cols, mask=cols < C, other=0.0).to(tl.float32)[None, :]
    y = y * tl.sigmoid(y)
    tl.store(OUT + o_row[:, None] + cols[None, :], y.to(OUT.dtype.element_ty), mask=live)


def launch_settings(channels: int, rows: int) -> tuple[int, int, int]:
    """(BLOCK_C, ROWS, warps): a power-of-two block covering C, and as many rows as fill TILE_ELEMENTS (never more
    than the tensor has, so a tiny input is one small program)."""
    block_c = triton.next_power_of_2(channels)
    tile_rows = max(1, min(TILE_ELEMENTS // block_c, triton.next_power_of_2(rows)))
    warps = min(max(block_c * tile_rows // 1024, 1), 8)
    return block_c, tile_rows, warps


def rms_norm_silu_into(x: torch.Tensor, gamma_scaled: torch.Tensor, bias: torch.Tensor | float | None,
                       out: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """out = silu(x / max(||x||_2 over C, eps) * gamma_scaled + bias), per pixel, for x (B, C, T, H, W).

    `gamma_scaled`: C values (WanRMS_norm's sqrt(C) * gamma, any shape with C elements; read in fp32).
    `bias`: C values, a 0-dim tensor or a number (broadcast to every channel), or None / 0 for none.
    `out`: x's shape, any dtype the kernel takes; x and out need unit stride along C. Returns out."""
    if x.ndim != 5 or tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"x and out must share one (B, C, T, H, W) shape, got {tuple(x.shape)}, {tuple(out.shape)}")
    batch, channels, frames, height, width = x.shape
    if x.stride(1) != 1 or out.stride(1) != 1:
        raise ValueError("x and out need contiguous channels (channels_last_3d memory)")
    if channels > MAX_CHANNELS:
        raise ValueError(f"the kernel takes at most {MAX_CHANNELS} channels, got {channels}")
    gamma = gamma_scaled.reshape(-1).to(device=x.device, dtype=torch.float32).contiguous()
    if gamma.numel() != channels:
        raise ValueError(f"gamma_scaled must hold {channels} values, got {gamma.numel()}")
    has_bias = bias is not None and not (isinstance(bias, (int, float)) and bias == 0)
    if has_bias:
        bias = torch.as_tensor(bias, dtype=torch.float32, device=x.device).reshape(-1)
        if bias.numel() not in (1, channels):
            raise ValueError(f"bias must hold 1 or {channels} values, got {bias.numel()}")
        bias = bias.expand(channels).contiguous()
    rows = batch * frames * height * width
    if rows == 0 or channels == 0:
        return out
    block_c, tile_rows, warps = launch_settings(channels, rows)
    if rows + tile_rows >= 2**31:  # row indices are int32 in the kernel (element offsets are int64)
        raise ValueError(f"the kernel takes fewer than 2**31 pixel rows, got {rows}")
    grid = (triton.cdiv(rows, tile_rows),)
    _rms_norm_silu_kernel[grid](x, gamma, bias if has_bias else gamma, out, rows, channels, frames, height, width,
                                x.stride(0), x.stride(2), x.stride(3), x.stride(4),
                                out.stride(0), out.stride(2), out.stride(3), out.stride(4), eps,
                                ROWS=tile_rows, BLOCK_C=block_c, HAS_BIAS=has_bias, num_warps=warps)
    return out

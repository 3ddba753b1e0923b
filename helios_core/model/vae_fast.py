"""Whole-chunk decode for diffusers' `AutoencoderKLWan`: the same causal network, every latent frame in one pass.

Why this is hand-written: diffusers (0.42) has no whole-clip decode for the Wan VAE. `AutoencoderKLWan._decode`
feeds the decoder ONE latent frame at a time and carries a causal feature cache between calls (`_feat_map`,
CACHE_T=2); on a CPU that loop is hundreds of tiny ops per frame and dominates the chunk's decode time. Calling
the decoder with `feat_cache=None` is not a substitute: it skips the temporal upsampler entirely. So this module
walks diffusers' own decoder modules (their weights, their config) with its own forward that runs each layer over
all frames of the chunk at once.

Equivalence with the per-frame path (the invariants the tests check against `vae.decode`):
- A causal conv (time kernel 3) sees its input stream left-padded with 2 zero frames: the per-frame path's cache
  holds nothing, then one frame, then the last two frames, which is exactly that padding over the whole stream.
- The temporal upsampler ("upsample3d") passes the stream's FIRST frame through unchanged (diffusers' "Rep"
  marker: no `time_conv` for latent frame 0) and runs `time_conv` over the remaining frames with zero causal
  padding; each of those frames becomes two, interleaved in time. So T latent frames become 1 + 4(T-1).
- Wan-2.2-style residual up blocks (`is_residual`) trim their duplicated shortcut by `factor_t - 1` frames for
  the pass that holds frame 0 (diffusers' `first_chunk`).
- Everything else (RMS norm, SiLU, spatial upsample, attention, 1x1x1 convs) works frame by frame anyway.
`latent_frames_per_pass` splits the chunk into passes that carry the same causal state forward (the last frames of
each conv's padded input, whether the first frame was seen), which bounds memory; 1 reproduces the per-frame path.

Speed: activations stay in channels_last_3d, where oneDNN's conv and the channel-wise RMS norm are fastest on CPU,
and CPU float32 convs call oneDNN directly: PyTorch's dispatch sends small 5-D convs (N*C*T*H <= 20480, i.e. all
of a tiny VAE's) to a slow im2col kernel. The spatial upsampler's nearest-2x + 3x3 conv is folded into one 2x2
conv per output phase (see `upsample2x_conv3x3`). On a GPU, `fused_norm=True` turns each RMS norm + SiLU (5-6
passes over the activation in PyTorch) into one Triton kernel that writes into the conv's padded input
(helios_core.kernels.vae_norm; `rms_norm_into` + F.silu stays as the reference and the fallback). Results equal
diffusers' within float32 rounding (about 5e-6 on [-1, 1] outputs), not bit for bit; in float64 they agree to ~1e-15.

Memory: a pass holds about three full-size activations of its largest stage at once (measured peak RSS 10.5 GB
for the real-size default config, one 9-latent chunk at 384x640); `latent_frames_per_pass` bounds that.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import (
    WanCausalConv3d,
    WanResidualBlock,
    WanResidualUpBlock,
    WanResample,
    WanRMS_norm,
    WanUpBlock,
    unpatchify,
)
from torch import nn

from helios_core.errors import ConfigError
from helios_core.kernels.backend import why_not_triton
from helios_core.model.vae_fast_ops import (
    CHANNELS_LAST,
    conv3d,
    is_nearest2x_then_conv3x3,
    rms_norm_into,
    upsample2x_conv3x3,
)



def supports_whole_chunk(vae: AutoencoderKLWan) -> bool:
    """True when `decode_chunk_whole` gives the same pixels as `vae.decode` for this VAE."""
    return _unsupported_reason(vae) is None


def decode_chunk_whole(
    vae: AutoencoderKLWan,
    latents: torch.Tensor,
    *,
    latent_frames_per_pass: int | None = None,
    fused_norm: bool = False,
) -> torch.Tensor:
    """De-normalised latents (B, z_dim, T, h, w) -> pixels in [-1, 1], as `vae.decode(latents).sample`.

    `latent_frames_per_pass=None` runs all T latent frames through each layer at once; a smaller number trades
    speed for peak memory (the output is the same). `fused_norm` runs each RMS norm + SiLU as one Triton kernel
    (helios_core.kernels.vae_norm; equal within the dtype's rounding) wherever it can: CUDA tensors in
    fp32/bf16/fp16 with no active dropout (or the CPU under TRITON_INTERPRET=1); elsewhere the PyTorch reference
    runs. No gradients are kept.
    """
    reason = _unsupported_reason(vae)
    if reason is not None:
        raise ConfigError(f"whole-chunk VAE decode: {reason}; use the reference (diffusers) decode for this VAE")
    if latent_frames_per_pass is not None and latent_frames_per_pass < 1:
        raise ConfigError(f"whole-chunk VAE decode: latent_frames_per_pass must be >= 1, got {latent_frames_per_pass}")
    with torch.no_grad():
        if vae.use_slicing and latents.shape[0] > 1:  # diffusers decodes one sample at a time then: so do we
            return torch.cat([_decode(vae, one, latent_frames_per_pass, fused_norm) for one in latents.split(1)])
        return _decode(vae, latents, latent_frames_per_pass, fused_norm)


def _unsupported_reason(vae: AutoencoderKLWan) -> str | None:
    if not isinstance(vae, AutoencoderKLWan):
        return f"expected diffusers' AutoencoderKLWan, got {type(vae).__name__}"
    if vae.use_tiling:
        return "tiling is enabled (diffusers then decodes overlapping tiles, which this path does not reproduce)"
    decoder = vae.decoder
    blocks = [*decoder.mid_block.resnets] + [res for up in decoder.up_blocks for res in up.resnets]
    if not all(isinstance(res, WanResidualBlock) and isinstance(res.nonlinearity, nn.SiLU) for res in blocks):
        return "a decoder block is not a SiLU WanResidualBlock (unknown diffusers layout)"
    if not isinstance(decoder.nonlinearity, nn.SiLU):
        return "the decoder head's activation is not SiLU"
    if vae.training and any(res.dropout.p > 0 for res in blocks):
        return "the VAE is in training mode with dropout (call vae.eval() first)"
    for up in decoder.up_blocks:
        if not isinstance(up, (WanUpBlock, WanResidualUpBlock)):
            return f"unknown decoder up block {type(up).__name__}"
        upsampler = _upsampler_of(up)
        if upsampler is not None and upsampler.mode not in ("upsample2d", "upsample3d"):
            return f"unknown decoder resample mode {upsampler.mode!r}"
        if upsampler is not None and not is_nearest2x_then_conv3x3(upsampler.resample):
            return "a decoder upsampler is not nearest 2x then a 3x3 conv (unknown diffusers layout)"
    return None


class _CausalStream:
    """The causal state one pass hands to the next: each conv's last padded-input frames, first frames seen."""

    def __init__(self, keep_history: bool, fused_norm: bool = False) -> None:
        self.keep_history = keep_history  # False for a single pass: nothing comes after it
        self.fused_norm = fused_norm  # norm + SiLU through the Triton kernel where it can run
        self.norm_gains: dict[nn.Module, torch.Tensor] = {}  # sqrt(C) * gamma in fp32, per norm, for the kernel
        self.history: dict[nn.Module, torch.Tensor] = {}
        self.first_frame_seen: set[nn.Module] = set()
        self.is_first_pass = True
        # Padded conv inputs are dead once their conv ran; reusing one per shape saves the page faults a fresh
        # multi-megabyte allocation costs on CPU (a tenth of the decode time at 128x256 without it).
        self.spare_buffers: dict[tuple[torch.Size, torch.dtype, torch.device], torch.Tensor] = {}


def _decode(
    vae: AutoencoderKLWan, latents: torch.Tensor, latent_frames_per_pass: int | None, fused_norm: bool
) -> torch.Tensor:
    latent_frames = latents.shape[2]
    per_pass = latent_frames if latent_frames_per_pass is None else min(latent_frames_per_pass, latent_frames)
    stream = _CausalStream(keep_history=per_pass < latent_frames, fused_norm=fused_norm)
    # post_quant_conv is 1x1x1: frame-wise, and diffusers applies it to the whole clip too.
    x = _conv(latents.contiguous(memory_format=CHANNELS_LAST), vae.post_quant_conv)
    passes = []
    for start in range(0, latent_frames, per_pass):
        passes.append(_decoder_pass(x[:, :, start : start + per_pass], vae.decoder, stream))
        stream.is_first_pass = False
    out = passes[0] if len(passes) == 1 else torch.cat(passes, dim=2)
    out = out.contiguous()
    if vae.config.patch_size is not None:
        out = unpatchify(out, patch_size=vae.config.patch_size)
    return out.clamp_(min=-1.0, max=1.0)


def _decoder_pass(x: torch.Tensor, decoder: nn.Module, stream: _CausalStream) -> torch.Tensor:
    """WanDecoder3d.forward for a run of latent frames, in the order diffusers applies its layers.

    One flat loop on purpose: a helper per up block would keep the block's input alive (its caller's reference)
    through the whole block, one more full-size activation at peak.
    """
    x = _causal_conv(x, decoder.conv_in, stream)
    mid = decoder.mid_block
    x = _residual_block(x, mid.resnets[0], stream)
    for attention, resnet in zip(mid.attentions, mid.resnets[1:]):
        if attention is not None:
            # Single-head attention within each frame: diffusers' module already handles any number of frames.
            x = attention(x).contiguous(memory_format=CHANNELS_LAST)
        x = _residual_block(x, resnet, stream)
    for up_block in decoder.up_blocks:
        # Only the residual (Wan 2.2) block needs its input again, for its frame-duplicating shortcut.
        block_input = x if isinstance(up_block, WanResidualUpBlock) else None
        for resnet in up_block.resnets:
            x = _residual_block(x, resnet, stream)
        stream.spare_buffers.clear()  # the upsampler changes every size: spare buffers would only add to peak
        upsampler = _upsampler_of(up_block)
        if upsampler is not None:
            x = _resample(x, upsampler, stream)
        if block_input is not None and up_block.avg_shortcut is not None:
            # DupUp3D repeats each frame factor_t times and, on frame 0's pass, drops the first factor_t - 1.
            x = x.add_(up_block.avg_shortcut(block_input.contiguous(), first_chunk=stream.is_first_pass))
        block_input = None
    padded = _activated_padded(x, decoder.norm_out, decoder.conv_out, stream)
    return _finish_causal_conv(padded, decoder.conv_out, stream)


def _upsampler_of(up_block: nn.Module) -> WanResample | None:
    if isinstance(up_block, WanResidualUpBlock):
        return up_block.upsampler
    return up_block.upsamplers[0] if up_block.upsamplers is not None else None


def _residual_block(x: torch.Tensor, block: WanResidualBlock, stream: _CausalStream) -> torch.Tensor:
    shortcut = x if isinstance(block.conv_shortcut, nn.Identity) else _causal_conv(x, block.conv_shortcut, stream)
    padded = _activated_padded(x, block.norm1, block.conv1, stream)
    h = _finish_causal_conv(padded, block.conv1, stream)
    padded = _activated_padded(h, block.norm2, block.conv2, stream, dropout=block.dropout)
    del h  # conv1's output lives on in `padded`: dropping it now saves a full activation at conv2's peak
    return _finish_causal_conv(padded, block.conv2, stream).add_(shortcut)


def _resample(x: torch.Tensor, resample: WanResample, stream: _CausalStream) -> torch.Tensor:
    if resample.mode == "upsample3d":
        x = _temporal_upsample(x, resample, stream)
    if x.dtype == torch.float64:
        x = x.float().double()  # diffusers' WanUpsample interpolates in float32 (a no-op for narrower dtypes)
    return upsample2x_conv3x3(x, resample.resample[1])  # resample = (WanUpsample 2x nearest-exact, Conv2d 3x3)


def _temporal_upsample(x: torch.Tensor, resample: WanResample, stream: _CausalStream) -> torch.Tensor:
    """Frame 0 passes through; every later frame t becomes time_conv's two halves, at 2t-1 and 2t."""
    keep_first = resample not in stream.first_frame_seen
    stream.first_frame_seen.add(resample)
    rest = x[:, :, 1:] if keep_first else x
    batch, channels, frames, height, width = x.shape
    rest_frames = rest.shape[2]
    out = torch.empty(
        (batch, channels, int(keep_first) + 2 * rest_frames, height, width),
        dtype=x.dtype,
        device=x.device,
        memory_format=CHANNELS_LAST,
    )
    if keep_first:
        out[:, :, :1].copy_(x[:, :, :1])
    if rest_frames:
        doubled = _causal_conv(rest, resample.time_conv, stream)  # (B, 2C, T', H, W), channels = (half, C)
        # diffusers: reshape(b, 2, c, t, h, w) then stack the halves on a new axis after t; in the channels-last
        # memory order (B, T', H, W, 2C) that is one copy into out's (B, T', 2, H, W, C) view.
        halves = doubled.permute(0, 2, 3, 4, 1).view(batch, rest_frames, height, width, 2, channels)
        target = out[:, :, int(keep_first) :].permute(0, 2, 3, 4, 1)
        target.view(batch, rest_frames, 2, height, width, channels).copy_(halves.permute(0, 1, 4, 2, 3, 5))
    return out


def _causal_conv(x: torch.Tensor, conv: WanCausalConv3d, stream: _CausalStream) -> torch.Tensor:
    padded = _padded_input(x, conv, stream)
    padded[:, :, conv._padding[4] :].copy_(x)
    return _finish_causal_conv(padded, conv, stream)


def _activated_padded(
    x: torch.Tensor,
    norm: WanRMS_norm,
    conv: WanCausalConv3d,
    stream: _CausalStream,
    dropout: nn.Module | None = None,
) -> torch.Tensor:
    """silu(norm(x)) written straight into the conv's causally padded input buffer (no extra copy)."""
    padded = _padded_input(x, conv, stream)
    activated = padded[:, :, conv._padding[4] :]
    active_dropout = dropout is not None and dropout.training and dropout.p > 0
    if stream.fused_norm and not active_dropout and _fused_norm_problem(x, activated) is None:
        _fused_norm_module().rms_norm_silu_into(x, _norm_gain(norm, stream), norm.bias, activated)
        return padded
    # The reference (PyTorch): 5-6 passes over the activation where the kernel makes one read and one write.
    rms_norm_into(x, norm, activated)
    F.silu(activated, inplace=True)
    if active_dropout:
        activated.copy_(dropout(activated))
    return padded


def _fused_norm_problem(x: torch.Tensor, out: torch.Tensor) -> str | None:
    """Why the fused norm + SiLU kernel cannot take this call (the reference then runs), or None."""
    problem = why_not_triton(x, out)  # CUDA (or the interpreter), an importable Triton, fp32 / bf16 / fp16
    if problem is not None:
        return problem
    limit = _fused_norm_module().MAX_CHANNELS  # Triton imports (checked above), so the kernel module may load
    if x.stride(1) != 1 or out.stride(1) != 1 or x.shape[1] > limit:
        return f"the kernel takes contiguous channels, at most {limit}"
    return None


def _fused_norm_module() -> ModuleType:
    # Imported on first use: it imports triton, which a CPU-only decode never needs.
    return importlib.import_module("helios_core.kernels.vae_norm")


def _norm_gain(norm: WanRMS_norm, stream: _CausalStream) -> torch.Tensor:
    """sqrt(C) * gamma as C fp32 values, computed once per decode (the reference multiplies in x's dtype)."""
    gain = stream.norm_gains.get(norm)
    if gain is None:
        gain = stream.norm_gains[norm] = norm.gamma.detach().reshape(-1).float() * norm.scale
    return gain


def _padded_input(x: torch.Tensor, conv: WanCausalConv3d, stream: _CausalStream) -> torch.Tensor:
    """An empty (B, C, pad + T, H, W) buffer whose first `pad` frames are zeros or the previous pass's frames."""
    time_pad = conv._padding[4]  # 2 * padding[0], all on the left: WanCausalConv3d's causal padding
    batch, channels, frames, height, width = x.shape
    shape = torch.Size((batch, channels, time_pad + frames, height, width))
    padded = stream.spare_buffers.pop((shape, x.dtype, x.device), None)
    if padded is None:
        padded = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=CHANNELS_LAST)
    if time_pad:
        previous = stream.history.get(conv)
        if previous is None:
            padded[:, :, :time_pad].zero_()
        else:
            padded[:, :, :time_pad].copy_(previous)
    return padded


def _finish_causal_conv(padded: torch.Tensor, conv: WanCausalConv3d, stream: _CausalStream) -> torch.Tensor:
    time_pad = conv._padding[4]
    if time_pad and stream.keep_history:
        stream.history[conv] = padded[:, :, -time_pad:].clone()
    out = _conv(padded, conv)
    stream.spare_buffers[(padded.shape, padded.dtype, padded.device)] = padded
    return out


def _conv(x: torch.Tensor, conv: WanCausalConv3d) -> torch.Tensor:
    """The conv with only its spatial padding: the causal time padding is already in x."""
    padding = [0, conv._padding[2], conv._padding[0]]
    return conv3d(x, conv.weight, conv.bias, padding, list(conv.stride), list(conv.dilation), conv.groups)



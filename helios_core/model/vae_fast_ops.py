"""Stateless layer ops of the whole-chunk Wan VAE decode (`vae_fast.py`): a causal conv's 3-D conv, the folded
nearest-2x upsample + 3x3 conv, and the PyTorch reference of the channel-wise RMS norm.

Kept apart from the causal-stream walk in `vae_fast.py` so that module holds only the decoder's control flow; these
functions know nothing of the stream and are tested through it (tests/model/test_vae_fast.py) and, for the norm,
against the fused Triton kernel (tests/kernels/test_vae_norm_kernel.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm
from torch import nn

CHANNELS_LAST = torch.channels_last_3d


def is_nearest2x_then_conv3x3(layers: nn.Sequential) -> bool:
    upsample, conv2d = layers
    return (
        isinstance(upsample, nn.Upsample)
        and upsample.mode in ("nearest", "nearest-exact")  # equal for an integer scale
        and tuple(upsample.scale_factor) == (2.0, 2.0)
        and isinstance(conv2d, nn.Conv2d)
        and conv2d.kernel_size == (3, 3)
        and conv2d.padding == (1, 1)
        and conv2d.stride == (1, 1)
        and conv2d.dilation == (1, 1)
        and conv2d.groups == 1
    )


# Nearest 2x upsampling then a 3x3 conv equals, for each output phase (row parity a, column parity b), a 2x2 conv
# on the original frame: output row 2i+a reads upsampled rows 2i+a-1..2i+a+1, i.e. original rows (i-1, i, i) for
# a=0 and (i, i, i+1) for a=1, so the 3 kernel rows fold into 2. One conv with 4x the output channels and a 2x2
# kernel then does 16 multiply-adds per output pixel and channel pair instead of 36, and the 4x larger upsampled
# input is never built. Folding sums kernel taps: equal to diffusers' result within float32 rounding.
_PHASE_FOLD = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def upsample2x_conv3x3(x: torch.Tensor, conv2d: nn.Conv2d) -> torch.Tensor:
    batch, _, frames, height, width = x.shape
    out_channels = conv2d.out_channels
    fold = _PHASE_FOLD.to(dtype=conv2d.weight.dtype, device=conv2d.weight.device)
    # (row phase a, column phase b, out, in, 2, 2), flattened to out channels ordered (a, b, out).
    phase_weight = torch.einsum("aik,ockl,bjl->abocij", fold, conv2d.weight, fold)
    phase_weight = phase_weight.reshape(4 * out_channels, -1, 1, 2, 2)
    phase_bias = conv2d.bias.repeat(4) if conv2d.bias is not None else None
    # Padding 1 gives (H+1, W+1) outputs; output index p covers original rows p-1 and p, so phase a starts at a.
    phases = conv3d(x, phase_weight, phase_bias, padding=[0, 1, 1], stride=[1, 1, 1], dilation=[1, 1, 1], groups=1)
    phases = phases.permute(0, 2, 3, 4, 1).view(batch, frames, height + 1, width + 1, 2, 2, out_channels)
    out = torch.empty(
        (batch, out_channels, frames, 2 * height, 2 * width),
        dtype=x.dtype,
        device=x.device,
        memory_format=CHANNELS_LAST,
    )
    interleaved = out.permute(0, 2, 3, 4, 1).view(batch, frames, height, 2, width, 2, out_channels)
    for row_phase in (0, 1):
        for col_phase in (0, 1):
            interleaved[:, :, :, row_phase, :, col_phase].copy_(
                phases[:, :, row_phase : row_phase + height, col_phase : col_phase + width, row_phase, col_phase]
            )
    return out


def conv3d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: list[int],
    stride: list[int],
    dilation: list[int],
    groups: int,
) -> torch.Tensor:
    if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        if torch.backends.mkldnn.enabled:
            # F.conv3d would route a small input to PyTorch's slow im2col kernel (see the module docstring).
            return torch.ops.aten.mkldnn_convolution(x, weight, bias, padding, stride, dilation, groups)
    return F.conv3d(x, weight, bias, stride, padding, dilation, groups)


def rms_norm_into(x: torch.Tensor, norm: WanRMS_norm, out: torch.Tensor) -> None:
    """WanRMS_norm (channel-first, 5-D): F.normalize over channels, times sqrt(C) * gamma, plus bias; into `out`."""
    if x.dtype in (torch.float16, torch.bfloat16):  # diffusers normalises half precision in float32
        out.copy_(F.normalize(x.float(), dim=1))
    else:
        # F.normalize is x / max(||x||, 1e-12); written out so the quotient lands in `out` without a temporary.
        denominator = torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min_(1e-12)
        torch.div(x, denominator, out=out)
    out.mul_(norm.scale * norm.gamma)
    if isinstance(norm.bias, torch.Tensor):
        out.add_(norm.bias)

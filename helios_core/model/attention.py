"""Which kernel runs the transformer's attention: `runtime.attention = sdpa | cudnn`.

    sdpa   PyTorch's scaled_dot_product_attention picks its own kernel (FlashAttention-2 for bf16 on an H100). The
           reference path, and the default.
    cudnn  the same SDPA call pinned to cuDNN's fused attention (`SDPBackend.CUDNN_ATTENTION`), which on Hopper is a
           FlashAttention-3-class kernel (TMA, warp specialisation). CUDA only, bf16/fp16 only.

Why not FlashAttention 3 itself: neither `flash-attn` nor `flash_attn_3` has a wheel on the package registries for
this platform (checked 2026-11-23), and diffusers' hub-kernel backends download at run time, which an offline box
cannot. cuDNN's kernel ships inside PyTorch.

The switch goes through diffusers' own attention dispatcher (each attention processor's `_attention_backend`), so
stock and fused (`helios_core.kernels`) processors both honour it. Unlike `ModelMixin.set_attention_backend`, it
does not touch diffusers' process-wide active backend: the speed bench runs diffusers' pipeline on the same module
afterwards and must see it stock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from diffusers.models.attention_dispatch import AttentionBackendName

from helios_core.errors import ConfigError

ATTENTION_CHOICES = ("sdpa", "cudnn")
_DIFFUSERS_BACKEND = {"sdpa": None, "cudnn": AttentionBackendName._NATIVE_CUDNN}


def require_attention_backend(choice: str, device: torch.device, dtype: torch.dtype | None = None) -> None:
    """A one-line ConfigError, before any weights load, when `choice` cannot run on this device/dtype."""
    if choice not in ATTENTION_CHOICES:
        raise ConfigError(f"runtime.attention must be one of {', '.join(ATTENTION_CHOICES)}; got '{choice}'")
    if choice == "cudnn":
        if device.type != "cuda":
            raise ConfigError("runtime.attention=cudnn needs a CUDA GPU (use sdpa on a CPU)")
        if dtype is not None and dtype not in (torch.bfloat16, torch.float16):
            raise ConfigError("runtime.attention=cudnn needs bf16 or fp16 weights (cuDNN attention has no fp32 kernel)")


def _processors(transformer: torch.nn.Module) -> list:
    found = []
    for module in transformer.modules():
        processor = getattr(module, "processor", None)
        if processor is not None and hasattr(processor, "_attention_backend"):
            found.append(processor)
    return found


def apply_attention_backend(transformer: torch.nn.Module, choice: str) -> int:
    """Route every attention processor of `transformer` to `choice`; returns how many were set."""
    if choice not in ATTENTION_CHOICES:
        raise ConfigError(f"runtime.attention must be one of {', '.join(ATTENTION_CHOICES)}; got '{choice}'")
    processors = _processors(transformer)
    for processor in processors:
        processor._attention_backend = _DIFFUSERS_BACKEND[choice]
    return len(processors)


@contextmanager
def attention_backend(transformer: torch.nn.Module, choice: str) -> Iterator[None]:
    """`choice` inside the block; each processor's previous backend restored on exit. Enter it BEFORE
    `helios_core.kernels.fused_kernels`, so the fused processors inherit it and the stock ones get theirs back."""
    previous = [(processor, processor._attention_backend) for processor in _processors(transformer)]
    apply_attention_backend(transformer, choice)
    try:
        yield
    finally:
        for processor, backend in previous:
            processor._attention_backend = backend

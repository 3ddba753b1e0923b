"""Switch a loaded diffusers HeliosTransformer3DModel between its stock modules and the fused kernels.

    enable_fused_kernels(transformer)            # every block, attention processor and the output norm
    disable_fused_kernels(transformer)           # back to diffusers' code, exactly
    with fused_kernels(transformer, "triton"):   # the runtime.kernels switch, restored on exit

Nothing is copied or re-created: weights, state_dict keys, LoRA adapters and class names stay as they are (so
`compile_repeated_blocks`, group offloading and context parallelism still find "HeliosTransformerBlock").
Blocks and the output norm get an instance-level `forward` (helios_modules.fused_block_forward /
fused_output_norm_forward); attention modules get a FusedHeliosAttnProcessor wrapping the stock processor.

Order matters for hooks that capture `forward` when they are installed (diffusers' group offloading): enable the
kernels first. A block whose `forward` is already replaced by someone else is refused with a one-line error
rather than silently unhooked. torch.compile: enable before compiling (a later switch recompiles).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch
from diffusers.models.transformers.transformer_helios import HeliosAttnProcessor, HeliosOutputNorm

from helios_core.errors import ConfigError
from helios_core.kernels.backend import KernelUnavailableError, check_impl, preload, triton_import_error
from helios_core.kernels.helios_modules import (
    IMPL_ATTR,
    FusedHeliosAttnProcessor,
    fused_block_forward,
    fused_output_norm_forward,
)

MODE_ATTR = "_helios_fused_kernels"  # on the transformer: the impl in use, absent when stock
KERNEL_CHOICES = ("torch", "triton")  # runtime.kernels


def _bound_to(module: torch.nn.Module, function: object) -> bool:
    forward = module.__dict__.get("forward")
    return getattr(forward, "__func__", None) is function


def _check_structure(transformer: torch.nn.Module) -> None:
    """One-line ConfigError when the model is not the diffusers Helios layout the fused code reproduces."""
    blocks = getattr(transformer, "blocks", None)
    if blocks is None or not isinstance(getattr(transformer, "norm_out", None), HeliosOutputNorm):
        raise ConfigError(f"fused kernels need a diffusers HeliosTransformer3DModel, got {type(transformer).__name__}")
    for index, block in enumerate(blocks):
        where = f"fused kernels: block {index}"
        for name in ("norm1", "norm3"):
            norm = getattr(block, name)
            if not isinstance(norm, torch.nn.LayerNorm) or norm.weight is not None:
                raise ConfigError(f"{where}: {name} is not a LayerNorm without affine parameters")
        for name in ("attn1", "attn2"):
            attn = getattr(block, name)
            if not isinstance(attn.processor, HeliosAttnProcessor):
                raise ConfigError(f"{where}: {name} uses {type(attn.processor).__name__}, not HeliosAttnProcessor")
            if not (isinstance(attn.norm_q, torch.nn.RMSNorm) and isinstance(attn.norm_k, torch.nn.RMSNorm)):
                raise ConfigError(f"{where}: {name} has no RMSNorm on queries and keys")
        _check_unhooked(block, fused_block_forward, where)
    _check_unhooked(transformer.norm_out, fused_output_norm_forward, "fused kernels: norm_out")


def _check_unhooked(module: torch.nn.Module, ours: object, where: str) -> None:
    if "forward" in module.__dict__ and not _bound_to(module, ours):
        raise ConfigError(f"{where}: its forward is already wrapped (e.g. by group offloading); "
                          "enable fused kernels before offloading or other forward hooks")


def enable_fused_kernels(transformer: torch.nn.Module, impl: str = "auto") -> torch.nn.Module:
    """Route the transformer's norms and RoPE through the fused ops (in place; returns the transformer).

    impl "auto": Triton on CUDA tensors, the PyTorch reference elsewhere; "torch": always the reference (the
    same module swap, useful to test it on a CPU); "triton": Triton or a KernelUnavailableError per call.
    Calling it again only changes impl."""
    check_impl(impl)
    if impl == "triton" and triton_import_error() is not None:
        raise KernelUnavailableError(f"fused kernels: Triton is not importable ({triton_import_error()})")
    _check_structure(transformer)
    if impl != "torch" and triton_import_error() is None:
        preload()
    for block in transformer.blocks:
        setattr(block, IMPL_ATTR, impl)
        block.forward = types.MethodType(fused_block_forward, block)
        for attn in (block.attn1, block.attn2):
            stock = attn.processor.original if isinstance(attn.processor, FusedHeliosAttnProcessor) else attn.processor
            attn.set_processor(FusedHeliosAttnProcessor(stock, impl))
    norm_out = transformer.norm_out
    setattr(norm_out, IMPL_ATTR, impl)
    norm_out.forward = types.MethodType(fused_output_norm_forward, norm_out)
    setattr(transformer, MODE_ATTR, impl)
    return transformer


def disable_fused_kernels(transformer: torch.nn.Module) -> torch.nn.Module:
    """Undo enable_fused_kernels (a no-op on a stock model); returns the transformer."""
    for block in getattr(transformer, "blocks", ()):
        if _bound_to(block, fused_block_forward):
            del block.forward
        block.__dict__.pop(IMPL_ATTR, None)
        for attn in (block.attn1, block.attn2):
            if isinstance(attn.processor, FusedHeliosAttnProcessor):
                attn.set_processor(attn.processor.restore())
    norm_out = getattr(transformer, "norm_out", None)
    if norm_out is not None and _bound_to(norm_out, fused_output_norm_forward):
        del norm_out.forward
        norm_out.__dict__.pop(IMPL_ATTR, None)
    transformer.__dict__.pop(MODE_ATTR, None)
    return transformer


def fused_kernels_mode(transformer: torch.nn.Module) -> str | None:
    """The impl the transformer's fused kernels run with, or None when it runs diffusers' stock code."""
    return transformer.__dict__.get(MODE_ATTR)


def require_triton_kernels(device: torch.device) -> None:
    """The up-front check behind runtime.kernels=triton: a CUDA device and an importable Triton."""
    if device.type != "cuda":
        raise ConfigError(f"runtime.kernels=triton needs a CUDA device (this run uses {device.type})")
    if triton_import_error() is not None:
        raise ConfigError(f"runtime.kernels=triton needs the triton package: {triton_import_error()}")


def apply_kernel_choice(transformer: torch.nn.Module, kernels: str, device: torch.device) -> None:
    """runtime.kernels: "torch" runs diffusers' stock modules (undoing any fused ones); "triton" checks the machine
    and switches the fused ops on with impl "auto" (Triton for every CUDA call whose shapes the kernels cover, the
    reference otherwise, so an odd shape is slower rather than fatal)."""
    if kernels not in KERNEL_CHOICES:
        raise ConfigError(f"runtime.kernels must be one of {', '.join(KERNEL_CHOICES)}, got {kernels!r}")
    if kernels == "torch":
        disable_fused_kernels(transformer)
        return
    require_triton_kernels(device)
    enable_fused_kernels(transformer, impl="auto")


@contextlib.contextmanager
def fused_kernels(transformer: torch.nn.Module, kernels: str, device: torch.device | None = None) -> Iterator[None]:
    """Apply a runtime.kernels choice for the duration of a block, then restore the previous state."""
    previous = fused_kernels_mode(transformer)
    apply_kernel_choice(transformer, kernels, device or next(transformer.parameters()).device)
    try:
        yield
    finally:
        if previous is None:
            disable_fused_kernels(transformer)
        else:
            enable_fused_kernels(transformer, previous)

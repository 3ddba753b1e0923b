"""Fused Triton kernels for the Helios transformer (the GPU fast path), each with its plain PyTorch reference.

    from helios_core.kernels import enable_fused_kernels, disable_fused_kernels
    enable_fused_kernels(transformer)      # diffusers HeliosTransformer3DModel, in place; outputs equal within bf16

Ops (ops.py; forward and backward, so training gains too): `modulated_layer_norm` (LayerNorm + timestep
modulation, and the affine norm2), `rms_norm` (the q/k norm) and `rope_3d` (the 3-D rotary embedding). Each takes
impl="auto" | "torch" | "triton" (backend.py). The engine's switch is `runtime.kernels: torch | triton`
(`apply_kernel_choice`). Importing this package does not import Triton.
"""

from helios_core.kernels.backend import IMPLS, KernelUnavailableError, triton_import_error
from helios_core.kernels.ops import (
    modulated_layer_norm,
    modulated_layer_norm_reference,
    rms_norm,
    rms_norm_reference,
    rope_3d,
    rope_3d_reference,
)
from helios_core.kernels.switch import (
    KERNEL_CHOICES,
    apply_kernel_choice,
    disable_fused_kernels,
    enable_fused_kernels,
    fused_kernels,
    fused_kernels_mode,
    require_triton_kernels,
)

__all__ = [
    "IMPLS",
    "KERNEL_CHOICES",
    "KernelUnavailableError",
    "apply_kernel_choice",
    "disable_fused_kernels",
    "enable_fused_kernels",
    "fused_kernels",
    "fused_kernels_mode",
    "modulated_layer_norm",
    "modulated_layer_norm_reference",
    "require_triton_kernels",
    "rms_norm",
    "rms_norm_reference",
    "rope_3d",
    "rope_3d_reference",
    "triton_import_error",
]

"""Every `runtime.*` choice that needs particular hardware or packages, checked in one call before weights load.

The engine runs it twice (in `check_request`, before the CLI loads anything, and again in `load`, for library
callers that go straight to loading) and `helios bench speed` once, before it builds the 14B model.
"""

from __future__ import annotations

import torch

from helios_core.config import RuntimeConfig
from helios_core.kernels import require_triton_kernels
from helios_core.model.attention import require_attention_backend
from helios_core.model.offload import require_offload_choice
from helios_core.model.quantize import require_quantization
from helios_core.model.vae import require_vae_norm_choice


def require_runtime_choices(runtime: RuntimeConfig, device: torch.device, dtype: torch.dtype,
                            *, compile: bool | None = None) -> None:
    """One-line ConfigErrors for choices this machine cannot run. `compile` overrides `runtime.compile` (the speed
    bench takes it as its own flag)."""
    require_offload_choice(runtime.offload, runtime.compile if compile is None else compile, device)
    if runtime.kernels == "triton":
        require_triton_kernels(device)
    require_attention_backend(runtime.attention, device, dtype)
    require_quantization(runtime.quantize, device)
    require_vae_norm_choice(runtime.vae_norm, device)

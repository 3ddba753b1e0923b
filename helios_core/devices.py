"""`--device` / `--dtype` names -> torch objects, with one-line errors (used by the engine and the benches)."""

from __future__ import annotations

import torch

from helios_core.errors import ConfigError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(name: str, *, no_gpu_hint: str = "use --device cpu") -> torch.device:
    """`no_gpu_hint` ends the error for a CUDA device on a machine without one (a bench has its own advice)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' asked for, but this machine has no CUDA GPU ({no_gpu_hint})")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        # bf16 is the reference's weight dtype on GPUs; CPUs have no fast bf16 matmul on most laptops.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype '{name}' (use auto, bf16, fp16 or fp32)")
    return DTYPES[name]

"""Which implementation an op runs: the plain PyTorch reference or a Triton kernel.

Every op in this package takes `impl`:
- "torch":  the reference (plain PyTorch, any device);
- "triton": the Triton kernel, or a `KernelUnavailableError` saying why it cannot run;
- "auto":   Triton where it can run, otherwise the reference.

Triton runs on CUDA tensors. With `TRITON_INTERPRET=1` in the environment before triton is first imported,
Triton's interpreter runs the same kernels on CPU tensors (slowly, with numpy; it truncates fp32 -> bf16 where a GPU
rounds to nearest): that is how the CPU test suite covers the kernels themselves (tests/conftest.py sets it). Triton
reads the variable when a function is decorated with @triton.jit: its own helpers (tl.sum, ...) when triton is
imported, ours when `triton_kernels.py` is, which happens lazily, on the first Triton call. Importing this package
never imports it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import torch

from helios_core.errors import ConfigError

IMPLS = ("auto", "torch", "triton")
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# One program holds a whole row in registers; past this width it would spill (Helios rows are 5,120 wide).
MAX_ROW = 16384


class KernelUnavailableError(ConfigError):
    """impl="triton" was asked for where the Triton kernel cannot run (no Triton, CPU tensors, unsupported shape)."""


_TRITON_ERROR: list[str | None] = []  # filled on first use; the answer cannot change within a process


# assume_constant_result: torch.compile calls these while tracing and bakes the answer in, instead of tracing an
# import or an environment lookup.
@torch.compiler.assume_constant_result
def triton_import_error() -> str | None:
    """None when Triton imports, else the reason."""
    if not _TRITON_ERROR:
        try:
            import triton  # noqa: F401
            import triton.language  # noqa: F401
        except Exception as err:  # noqa: BLE001 - any failure (missing, broken install) means "no Triton"
            _TRITON_ERROR.append(f"{type(err).__name__}: {err}")
        else:
            _TRITON_ERROR.append(None)
    return _TRITON_ERROR[0]


@torch.compiler.assume_constant_result
def interpreting() -> bool:
    """True when Triton's CPU interpreter is switched on for this process."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ConfigError(f"kernel impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    return impl


def why_not_triton(*tensors: torch.Tensor | None) -> str | None:
    """None when the Triton kernels can take these tensors, else a one-line reason."""
    error = triton_import_error()
    if error is not None:
        return f"Triton is not importable ({error})"
    present = [t for t in tensors if t is not None]
    if not interpreting() and not all(t.is_cuda for t in present):
        return "Triton kernels need CUDA tensors (or TRITON_INTERPRET=1 for the CPU interpreter)"
    if any(t.dtype not in KERNEL_DTYPES for t in present):
        return f"Triton kernels take fp32, bf16 or fp16 tensors, got {[str(t.dtype) for t in present]}"
    return None


def use_triton(impl: str, *tensors: torch.Tensor | None, reason: str | None = None) -> bool:
    """Decide one call. `reason` is an op-specific objection (a shape the kernel does not cover), or None."""
    if check_impl(impl) == "torch":
        return False
    problem = reason or why_not_triton(*tensors)
    if problem is None:
        return True
    if impl == "triton":
        raise KernelUnavailableError(f"impl='triton' cannot run here: {problem}")
    return False


_LOADED: list[ModuleType] = []


def kernel_module() -> ModuleType:
    """helios_core.kernels.triton_kernels, imported on first use (see the module docstring for why). Cached in a
    plain list, so that a torch.compile trace after `preload()` sees a lookup, not an import."""
    if not _LOADED:
        _LOADED.append(importlib.import_module("helios_core.kernels.triton_kernels"))
    return _LOADED[0]


def preload() -> None:
    """Import the kernels now (outside any torch.compile trace, which should not see a first import)."""
    kernel_module()

"""Kernel tests: the Triton kernels run on CUDA when there is a GPU, else under Triton's CPU interpreter.

Triton reads TRITON_INTERPRET when a function is decorated with @triton.jit, i.e. when a module defining kernels is
imported, and triton.language decorates its own helpers (tl.sum, ...) when triton is first imported. diffusers
imports triton while the test modules are collected, so tests/conftest.py sets TRITON_INTERPRET=1 (on machines
without CUDA) before anything is collected. Without a GPU and without a working interpreter the Triton tests skip and
say why.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="session")
def triton_device() -> torch.device:
    """Where the Triton kernels run in this session: cuda, or cpu under the interpreter (else a skip with reason)."""
    from helios_core.kernels.backend import interpreting, triton_import_error

    if triton_import_error() is not None:
        pytest.skip(f"Triton is not importable here: {triton_import_error()}")
    if HAS_CUDA:
        return torch.device("cuda")
    if not interpreting():
        pytest.skip("no CUDA GPU and TRITON_INTERPRET is set to something other than 1 in the environment")
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(tl.standard.sum, InterpretedFunction):
        pytest.skip("triton was imported before TRITON_INTERPRET=1 was set, so its interpreter cannot run here")
    return torch.device("cpu")


@pytest.fixture(scope="session")
def tol() -> Callable[[torch.dtype], dict[str, float]]:
    """tol(dtype) -> assert_close tolerances for kernel vs reference."""
    return _tolerances


def _tolerances(dtype: torch.dtype) -> dict[str, float]:
    """Kernel vs reference: fp32 to reduction-order noise; bf16 to one rounding step of the output (the CPU
    interpreter also truncates fp32 -> bf16 where the GPU rounds to nearest, one more step at most)."""
    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 1e-5}
    return {"rtol": 1.6e-2, "atol": 1e-2}


@pytest.fixture
def helios_inputs() -> Callable[..., dict]:
    """Inputs for a tiny HeliosTransformer3DModel forward with every history term (long, mid, short + anchor)."""

    def make(batch: int = 1, size: int = 4, frames: int = 1, seed: int = 0, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32, text_dim: int = 32) -> dict:
        generator = torch.Generator().manual_seed(seed)

        def noise(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator).to(device, dtype)

        def frames_at(start: int, count: int) -> torch.Tensor:
            return torch.arange(start, start + count, device=device)[None].expand(batch, -1)

        return dict(
            hidden_states=noise(batch, 16, frames, size, size),
            timestep=torch.linspace(300.0, 800.0, batch, device=device),
            encoder_hidden_states=noise(batch, 5, text_dim),
            indices_latents_history_long=frames_at(0, 4), latents_history_long=noise(batch, 16, 4, size, size),
            indices_latents_history_mid=frames_at(4, 2), latents_history_mid=noise(batch, 16, 2, size, size),
            indices_latents_history_short=frames_at(6, 2), latents_history_short=noise(batch, 16, 2, size, size),
            indices_hidden_states=frames_at(8, frames),
            return_dict=False,
        )

    return make


@pytest.fixture
def tiny_helios() -> Callable[..., torch.nn.Module]:
    """A tiny random HeliosTransformer3DModel (the project's tiny config), deterministic in `seed`."""

    def make(seed: int = 0, **overrides: object) -> torch.nn.Module:
        from diffusers import HeliosTransformer3DModel

        from helios_core.model.tiny import tiny_transformer_config

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return HeliosTransformer3DModel(**tiny_transformer_config(**overrides)).eval()

    return make

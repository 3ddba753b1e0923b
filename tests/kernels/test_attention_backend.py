"""runtime.attention (helios_core.model.attention): the switch reaches every processor, fused ones included, is undone
cleanly, refuses what cannot run before any weights load, and on a GPU cuDNN's attention equals the SDPA reference."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_dispatch import AttentionBackendName

from helios_core.errors import ConfigError
from helios_core.kernels import disable_fused_kernels, enable_fused_kernels
from helios_core.model.attention import (
    apply_attention_backend,
    attention_backend,
    require_attention_backend,
)


def _backends(model: torch.nn.Module) -> list:
    return [m.processor._attention_backend for m in model.modules() if hasattr(getattr(m, "processor", None),
                                                                               "_attention_backend")]


def test_apply_routes_every_attention_and_sdpa_is_the_stock_dispatch(tiny_helios) -> None:
    model = tiny_helios()
    layers = len(model.blocks)
    assert apply_attention_backend(model, "cudnn") == 2 * layers  # self- and cross-attention per block
    assert set(_backends(model)) == {AttentionBackendName._NATIVE_CUDNN}
    apply_attention_backend(model, "sdpa")
    assert set(_backends(model)) == {None}


def test_context_restores_and_fused_processors_inherit_the_backend(tiny_helios) -> None:
    model = tiny_helios()
    with attention_backend(model, "cudnn"):
        enable_fused_kernels(model, impl="torch")  # the fused processors, on their PyTorch reference ops
        processors = [m.processor for m in model.modules() if hasattr(getattr(m, "processor", None), "original")]
        assert processors, "fused processors should be installed inside the block"
        assert {p._attention_backend for p in processors} == {AttentionBackendName._NATIVE_CUDNN}
        disable_fused_kernels(model)
    assert set(_backends(model)) == {None}
    assert not any(hasattr(m.processor, "original") for m in model.modules() if hasattr(m, "processor"))


@pytest.mark.parametrize("choice, device, dtype, message", [
    ("cudnn", "cpu", torch.float32, "needs a CUDA GPU"),
    ("cudnn", "cuda", torch.float32, "needs bf16 or fp16"),
    ("flash9", "cpu", None, "must be one of sdpa, cudnn"),
])
def test_impossible_choices_fail_with_one_line(choice: str, device: str, dtype, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        require_attention_backend(choice, torch.device(device), dtype)


def test_sdpa_is_allowed_everywhere() -> None:
    require_attention_backend("sdpa", torch.device("cpu"), torch.float32)  # raises nothing
    with pytest.raises(ConfigError):
        apply_attention_backend(torch.nn.Linear(2, 2), "nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuDNN attention runs on CUDA GPUs only")
def test_cudnn_attention_equals_sdpa_reference_on_gpu(tiny_helios, helios_inputs) -> None:
    model = tiny_helios().to("cuda", torch.bfloat16)
    inputs = helios_inputs(batch=1, size=8, frames=2, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        reference = model(**inputs)[0].float()
        with attention_backend(model, "cudnn"):
            fast = model(**inputs)[0].float()
    torch.testing.assert_close(fast, reference, rtol=2e-2, atol=2e-2)
    assert (fast - reference).abs().mean() < 5e-3

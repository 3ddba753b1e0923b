"""enable/disable_fused_kernels on a tiny diffusers HeliosTransformer3DModel, run on the reference path (impl="torch")
so it holds on any CPU: same outputs and gradients as the stock model, a clean restore, and the runtime switch."""

from __future__ import annotations

import types

import pytest
import torch
from diffusers.models.transformers.transformer_helios import HeliosAttnProcessor, HeliosTransformerBlock

from helios_core.config import GenerationConfig, RuntimeConfig
from helios_core.errors import ConfigError
from helios_core.kernels import (
    apply_kernel_choice,
    disable_fused_kernels,
    enable_fused_kernels,
    fused_kernels,
    fused_kernels_mode,
)
from helios_core.kernels import helios_modules


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count calls of the fused ops made by the fused modules (proof that the swap is in effect)."""
    calls = {"modulated_layer_norm": 0, "rms_norm": 0, "rope_3d": 0}
    for name in calls:
        original = getattr(helios_modules, name)

        def wrapper(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(helios_modules, name, wrapper)
    return calls


@pytest.mark.parametrize("overrides", [{}, {"guidance_cross_attn": False, "is_amplify_history": True}],
                         ids=["released", "no_guidance_amplified_history"])
def test_fused_model_matches_stock_forward(tiny_helios, helios_inputs, monkeypatch, overrides: dict) -> None:
    model = tiny_helios(**overrides)
    inputs = helios_inputs(batch=2, size=8, frames=2)
    with torch.no_grad():
        stock = model(**inputs)[0]
        calls = _counting(monkeypatch)
        enable_fused_kernels(model, impl="torch")
        fused = model(**inputs)[0]
    layers = len(model.blocks)
    # per block: norm1, norm2 (affine), norm3; plus the output norm. q and k of both attentions; RoPE on q and k.
    assert calls == {"modulated_layer_norm": 3 * layers + 1, "rms_norm": 4 * layers, "rope_3d": 2 * layers}
    torch.testing.assert_close(fused, stock, rtol=1e-5, atol=1e-5)


def test_fused_model_matches_stock_gradients(tiny_helios, helios_inputs) -> None:
    """The training path: gradients of every parameter and of the noisy latents agree."""
    inputs = helios_inputs(batch=1, size=4, frames=1, seed=1)
    target = torch.randn(1, 16, 1, 4, 4, generator=torch.Generator().manual_seed(5))

    def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        latents = inputs["hidden_states"].clone().requires_grad_()
        loss = (model(**{**inputs, "hidden_states": latents})[0] * target).sum()
        loss.backward()
        out = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return {**out, "latents": latents.grad}

    model = tiny_helios(seed=2)
    stock = grads(model)
    fused = grads(enable_fused_kernels(model, impl="torch"))
    assert stock.keys() == fused.keys() and "blocks.0.attn1.norm_q.weight" in fused
    for name, grad in stock.items():
        torch.testing.assert_close(fused[name], grad, rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")


def test_per_sample_modulation_branch_of_the_block(tiny_helios) -> None:
    """A 3-D temb (one modulation per sample, not per token) takes the block's other branch."""
    block = tiny_helios(seed=3).blocks[0]
    generator = torch.Generator().manual_seed(4)
    hidden = torch.randn(2, 10, 64, generator=generator)
    text = torch.randn(2, 5, 64, generator=generator)
    temb = torch.randn(2, 6, 64, generator=generator)
    freqs = torch.randn(2, 10, 64, generator=generator)
    with torch.no_grad():
        stock = HeliosTransformerBlock.forward(block, hidden, text, temb, freqs, 6)
        setattr(block, helios_modules.IMPL_ATTR, "torch")
        fused = helios_modules.fused_block_forward(block, hidden, text, temb, freqs, 6)
    torch.testing.assert_close(fused, stock, rtol=1e-5, atol=1e-5)


def test_disable_restores_the_stock_model_exactly(tiny_helios, helios_inputs) -> None:
    model = tiny_helios(seed=4)
    inputs = helios_inputs(batch=1, size=4)
    processors = [(b.attn1.processor, b.attn2.processor) for b in model.blocks]
    keys = list(model.state_dict())
    with torch.no_grad():
        stock = model(**inputs)[0]
        enable_fused_kernels(model, impl="torch")
        enable_fused_kernels(model, impl="auto")  # again: only impl changes, the stock processors stay known
        assert fused_kernels_mode(model) == "auto"
        assert list(model.state_dict()) == keys
        assert type(model.blocks[0]).__name__ == "HeliosTransformerBlock"  # compile_repeated_blocks matches names
        disable_fused_kernels(model)
        restored = model(**inputs)[0]
    assert torch.equal(restored, stock)
    assert fused_kernels_mode(model) is None
    assert "forward" not in model.norm_out.__dict__
    for block, (p1, p2) in zip(model.blocks, processors, strict=True):
        assert "forward" not in block.__dict__
        assert block.attn1.processor is p1 and block.attn2.processor is p2
        assert type(p1) is HeliosAttnProcessor


def test_processor_swap_keeps_attention_backend_and_parallel_config(tiny_helios) -> None:
    """set_attention_backend / enable_parallelism store their choice on the processor instance: both survive."""
    model = tiny_helios(seed=4)
    attn = model.blocks[0].attn1
    stock, backend, parallel = attn.processor, object(), object()
    stock._attention_backend = backend
    enable_fused_kernels(model, impl="torch")
    assert isinstance(attn.processor, helios_modules.FusedHeliosAttnProcessor)
    assert attn.processor._attention_backend is backend and attn.processor._parallel_config is None
    attn.processor._parallel_config = parallel  # enable_parallelism while fused
    disable_fused_kernels(model)
    assert attn.processor is stock and stock._parallel_config is parallel and stock._attention_backend is backend


def test_refuses_models_it_does_not_reproduce(tiny_helios) -> None:
    with pytest.raises(ConfigError, match="HeliosTransformer3DModel"):
        enable_fused_kernels(torch.nn.Linear(2, 2))
    model = tiny_helios(seed=5)
    model.blocks[1].forward = types.MethodType(lambda self, *a: a[0], model.blocks[1])  # e.g. an offload hook
    with pytest.raises(ConfigError, match="block 1: its forward is already wrapped"):
        enable_fused_kernels(model)
    with pytest.raises(ConfigError, match="impl must be one of"):
        enable_fused_kernels(tiny_helios(), impl="fast")


def test_runtime_switch(tiny_helios) -> None:
    model = tiny_helios(seed=6)
    with pytest.raises(ConfigError, match="runtime.kernels=triton needs a CUDA device"):
        apply_kernel_choice(model, "triton", torch.device("cpu"))
    assert fused_kernels_mode(model) is None
    enable_fused_kernels(model, impl="torch")
    apply_kernel_choice(model, "torch", torch.device("cpu"))  # "torch" means diffusers' stock modules
    assert fused_kernels_mode(model) is None
    enable_fused_kernels(model, impl="torch")
    with fused_kernels(model, "torch"):
        assert fused_kernels_mode(model) is None
    assert fused_kernels_mode(model) == "torch"  # the previous state comes back


def test_runtime_kernels_config_key() -> None:
    assert RuntimeConfig().kernels == "torch"
    assert GenerationConfig().with_values({"runtime.kernels": "triton"}).runtime.kernels == "triton"
    with pytest.raises(ConfigError, match="runtime.kernels' must be one of torch, triton"):
        GenerationConfig().with_values({"runtime.kernels": "cuda"})


def test_engine_refuses_triton_kernels_on_cpu_before_loading(tmp_path) -> None:
    from helios_core.engine import HeliosEngine

    with pytest.raises(ConfigError, match="needs a CUDA device"):
        HeliosEngine.load(tmp_path / "no-model-here", RuntimeConfig(device="cpu", kernels="triton"))


def test_speed_bench_refuses_triton_kernels_on_cpu_before_building_models() -> None:
    from helios_core.bench.speed import run_speed_bench

    with pytest.raises(ConfigError, match="needs a CUDA device"):
        run_speed_bench(preset="distilled", steps=[1, 1, 1], height=32, width=32, num_frames=9, full_size=False,
                        device="cpu", overrides={"runtime.kernels": "triton"})

"""runtime.quantize (helios_core.model.quantize): which layers fp8 converts, the up-front refusals, and on an FP8 GPU
the converted model against the bf16 reference on the same inputs."""

from __future__ import annotations

import pytest
import torch
from diffusers import HeliosTransformer3DModel

from helios_core.config import RuntimeConfig
from helios_core.engine import HeliosEngine
from helios_core.errors import ConfigError
from helios_core.model.quantize import is_block_linear, quantize_transformer, require_quantization, torchao_import_error
from helios_core.model.tiny import tiny_transformer_config


def _tiny(seed: int = 0) -> HeliosTransformer3DModel:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return HeliosTransformer3DModel(**tiny_transformer_config()).eval()


def test_fp8_targets_exactly_the_blocks_linears() -> None:
    model = _tiny()
    chosen = [name for name, module in model.named_modules() if is_block_linear(module, name)]
    per_block = {name.split(".", 2)[2] for name in chosen}
    # attention 1 and 2: q, k, v, out; feed-forward: in and out projections
    assert per_block == {f"attn{i}.{p}" for i in (1, 2) for p in ("to_q", "to_k", "to_v", "to_out.0")} | {
        "ffn.net.0.proj", "ffn.net.2"}, per_block
    assert len(chosen) == 10 * len(model.blocks)
    assert not any(is_block_linear(module, name) for name, module in model.named_modules()
                   if not name.startswith("blocks."))
    assert quantize_transformer(model, "none") == 0


@pytest.mark.parametrize("choice, message", [("fp8", "needs a CUDA GPU"), ("int3", "must be one of none, fp8")])
def test_impossible_choices_fail_with_one_line(choice: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        require_quantization(choice, torch.device("cpu"))


def test_engine_refuses_fp8_on_a_cpu_before_loading(tiny_model_dir, monkeypatch) -> None:
    def must_not_load(*args, **kwargs):
        raise AssertionError("weights were loaded before the quantize choice was checked")

    monkeypatch.setattr("helios_core.engine.load_model_folder", must_not_load)
    with pytest.raises(ConfigError, match="quantize=fp8 needs a CUDA GPU"):
        HeliosEngine.load(tiny_model_dir, RuntimeConfig(device="cpu", quantize="fp8"))


FP8_GPU = torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


@pytest.mark.skipif(not FP8_GPU or torchao_import_error() is not None,
                    reason="FP8 matmuls need a CUDA GPU of compute capability 8.9+ and torchao installed")
def test_fp8_model_stays_close_to_the_bf16_reference_on_gpu() -> None:
    model = _tiny().to("cuda", torch.bfloat16)
    generator = torch.Generator().manual_seed(0)

    def noise(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to("cuda", torch.bfloat16)

    inputs = dict(hidden_states=noise(1, 16, 2, 8, 8), timestep=torch.tensor([500.0], device="cuda"),
                  encoder_hidden_states=noise(1, 5, model.config.text_dim), return_dict=False)
    with torch.no_grad():
        reference = model(**inputs)[0].float()
        assert quantize_transformer(model, "fp8") == 10 * len(model.blocks)
        assert "Float8" in type(model.blocks[0].attn1.to_q.weight).__name__
        fast = model(**inputs)[0].float()
    relative = (fast - reference).norm() / reference.norm()
    assert 0 < relative < 0.1, relative  # FP8 moves the output (not bit-equal), but only by quantisation error

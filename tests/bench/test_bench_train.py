"""`helios bench train`: the training-step bench through the CLI, and its FLOP count checked by hand."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import HeliosTransformer3DModel
from typer.testing import CliRunner

from helios_cli.app import app
from helios_core.bench.speed_flops import ForwardFlops, ForwardTokens, forward_flops
from helios_core.bench.train_flops import AdaptedLayer, adapted_layers, lora_forward_flops, training_step_flops
from helios_core.model.tiny import full_transformer_config, tiny_transformer_config
from helios_core.training.config import LoraSettings
from helios_core.training.model_setup import add_lora


def _bench(*args: str) -> dict:
    result = CliRunner().invoke(app, ["bench", "train", *args])
    assert result.exit_code == 0, result.output
    assert "seconds per step" in result.output
    return json.loads(result.output.strip().splitlines()[-1])


def test_bench_train_tiny_reports_time_memory_and_utilisation_as_json():
    report = _bench("--size", "tiny", "--steps", "2")
    assert (report["bench"], report["stage"], report["size"], report["steps"], report["lora_rank"]) == \
        ("train", "mid", "tiny", 2, 256)
    assert (report["height"], report["width"], report["gradient_checkpointing"]) == (64, 64, True)
    assert report["seconds_per_step"] > 0 and report["losses_finite"] and len(report["per_step"]) == 2
    assert report["peak_gpu_memory_gib"] is None  # this CPU test has no GPU memory to report
    assert report["peak_tflops"] == 989.0 and "2x base linears" in report["flop_method"]
    assert report["tflops_achieved"] > 0 and 0 < report["mfu"] < 1
    assert report["hardware_tflops"] > report["tflops_achieved"]  # checkpointing recomputes the blocks
    assert 0 < report["trainable_params"] < report["transformer_params"]
    # Each step's FLOPs follow its pyramid level: 9 latent frames of 8x8 -> 9 / 36 / 144 noisy tokens.
    assert all(step["noisy_tokens"][0] in (9, 36, 144) and step["model_tflop"] > 0 for step in report["per_step"])


def test_timed_mid_steps_cover_every_pyramid_level_and_weight_them_as_training_does():
    report = _bench("--size", "tiny", "--steps", "3")
    assert [step["noisy_tokens"][0] for step in report["per_step"]] == [9, 36, 144]  # coarsest first, each once
    level_seconds = list(report["seconds_by_noisy_tokens"].values())
    expected = (level_seconds[0] + 2 * level_seconds[1] + level_seconds[2]) / 4  # sample_ratios 1:2:1
    assert abs(report["expected_seconds_per_step"] - expected) < 1e-3


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "full", "--device", "cpu"], "needs a CUDA device"),
    (["--size", "tiny", "--stage", "distilled"], "base and mid"),
    (["--size", "tiny", "--height", "100"], "multiples of 64"),
])
def test_bench_train_mistakes_are_one_line_errors(args: list[str], message: str):
    result = CliRunner().invoke(app, ["bench", "train", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_lora_flops_and_step_multipliers_match_a_hand_count():
    config = {**tiny_transformer_config(), "guidance_cross_attn": True}
    tokens = ForwardTokens(noisy=100, short=20, mid=5, long=5, text=16)  # 130 tokens in all
    layers = [AdaptedLayer("blocks.0.attn1.to_q", 64, 64, 4), AdaptedLayer("blocks.0.attn2.to_q", 64, 64, 4),
              AdaptedLayer("blocks.0.attn2.to_k", 64, 64, 4), AdaptedLayer("blocks.0.ffn.net.0.proj", 64, 128, 4)]
    expected = 2 * 4 * (130 * 128 + 100 * 128 + 16 * 128 + 130 * 192)  # all / noisy (cross q) / text (cross k) / all
    assert lora_forward_flops(layers, config, tokens) == expected

    forward = ForwardFlops(embeddings=1.0, linear=10.0, self_attention=4.0, cross_attention=2.0)
    lora = training_step_flops(forward, 3.0, lora_training=True, gradient_checkpointing=True)
    assert lora.model == 2 * 11 + 3 * 6 + 3 * 3 and lora.hardware == lora.model + 10 + 6 + 3
    full = training_step_flops(forward, 0.0, lora_training=False, gradient_checkpointing=False)
    assert full.model == full.hardware == 3 * 17


def test_adapted_layers_are_found_in_a_peft_model_and_the_14b_forward_count_is_the_known_one():
    model = HeliosTransformer3DModel(**tiny_transformer_config())
    add_lora(model, LoraSettings(rank=4, alpha=4), seed=0)
    layers = adapted_layers(model)
    assert len(layers) == 2 * 10 and {layer.rank for layer in layers} == {4}  # 2 blocks x 10 target layers
    assert {(layer.in_features, layer.out_features) for layer in layers} == {(64, 64), (64, 128), (128, 64)}
    # speed_flops' count of the 14B model at the third pyramid level of 384x640 (2,400 history tokens).
    stage2 = ForwardTokens(noisy=8640, short=1920, mid=240, long=240, text=512)
    assert forward_flops(full_transformer_config(), stage2).total == pytest.approx(0.35956e15, rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="peak GPU memory needs a CUDA device")
def test_bench_train_reports_peak_gpu_memory_on_a_gpu():
    report = _bench("--size", "tiny", "--steps", "2", "--device", "cuda")
    assert report["peak_gpu_memory_gib"] > 0 and report["device"] != "cpu"


def test_full_size_build_is_bf16_with_the_fp32_modules_kept(monkeypatch):
    """The 14B build path, run with the tiny config so it fits a CPU test: bf16 weights made in place, the
    `_keep_in_fp32_modules` back in fp32, and the caller's default dtype left alone."""
    from helios_core.bench import train_bench

    monkeypatch.setattr(train_bench, "full_transformer_config", tiny_transformer_config)
    model = train_bench.build_transformer("full", torch.device("cpu"), seed=0)
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert torch.get_default_dtype() == torch.float32
    assert dtypes["blocks.0.attn1.to_q.weight"] == torch.bfloat16 and dtypes["proj_out.weight"] == torch.bfloat16
    assert dtypes["blocks.0.scale_shift_table"] == torch.float32
    assert any(d == torch.float32 and "time_embedder" in n for n, d in dtypes.items())

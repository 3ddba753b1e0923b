"""Speed bench on CPU with tiny models: the whole run (ours and diffusers), the JSON, and the FLOP counter.

The tiny runs use 3 latent frames per chunk (9 pixel frames) so the Wan VAE decode stays cheap, and one torch
thread: these models do thousands of tiny ops, which two threads on a busy 2-core box slow down ~10x.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import HeliosTransformer3DModel
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from helios_core.bench.speed import main, run_speed_bench
from helios_core.bench.speed_flops import ForwardTokens, forward_flops, forward_tokens
from helios_core.bench.speed_models import build_bench_models
from helios_core.model.tiny import full_transformer_config, tiny_transformer_config
from helios_core.errors import ConfigError

SMALL_CHUNKS = {"history.latent_frames_per_chunk": 3}  # 9 pixel frames per chunk
SIDE_KEYS = {"warmup_s", "e2e_fps", "e2e_s", "steady_fps", "first_chunk_s", "frames", "peak_allocated_gib",
             "peak_reserved_gib", "breakdown", "runs"}
BREAKDOWN_KEYS = {"chunk_s", "transformer_s_by_stage", "transformer_s", "vae_s", "rest_s", "forwards_by_stage",
                  "transformer_pflop_per_chunk", "transformer_tflops_by_stage", "transformer_tflops", "chunk_tflops",
                  "utilisation"}


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _positive_finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_tiny_bench_runs_ours_and_diffusers_end_to_end(capsys):
    # 10 frames asked -> 2 chunks of 9 -> 18 generated -> cut to 4k + 1 = 17 on both sides ("reference" trim).
    main(["--tiny", "--device", "cpu", "--preset", "distilled", "--steps", "1,1,1", "--height", "64", "--width", "64",
          "--num-frames", "10", "--repeats", "2", "--set", "history.latent_frames_per_chunk=3"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert "ours / diffusers" in "\n".join(printed[:-1])  # the table comes first
    result = json.loads(printed[-1])  # the JSON object is the last line
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN or infinity anywhere

    assert {"bench", "scope", "environment", "preset", "sampler", "video", "compile", "model", "flops", "ours",
            "diffusers", "ratio_ours_over_diffusers"} <= set(result)
    assert "text encoder" in result["scope"] and "not run" in result["model"]["text_encoder"]
    assert result["video"]["chunks"] == 2 and result["video"]["chunk_frames"] == 9
    assert result["sampler"]["steps"] == [1, 1, 1] and result["model"]["full_size"] is False

    for side in ("ours", "diffusers"):
        data = result[side]
        assert SIDE_KEYS <= set(data), side
        assert BREAKDOWN_KEYS <= set(data["breakdown"]), side
        assert data["frames"] == 17
        for key in ("e2e_fps", "steady_fps", "first_chunk_s", "e2e_s", "warmup_s"):
            assert _positive_finite(data[key]), (side, key, data[key])
        assert len(data["runs"]) == 2
        for run in data["runs"]:
            assert run["frames"] == 17 and run["chunks"] == 2 and len(run["per_chunk"]) == 2
            assert run["e2e_fps"] == pytest.approx(17 / run["e2e_s"], rel=1e-3)
            assert run["chunk_fps"] == pytest.approx([9 / c["chunk_s"] for c in run["per_chunk"]], rel=1e-3)
            for chunk in run["per_chunk"]:
                assert chunk["forwards_by_stage"] == [1, 1, 1]  # one forward per stage, no CFG
                parts = chunk["transformer_s"] + chunk["vae_s"] + chunk["rest_s"]
                assert parts == pytest.approx(chunk["chunk_s"], rel=1e-3)
                assert min(chunk["transformer_s_by_stage"]) > 0 and chunk["vae_s"] > 0
        # FLOPs counted in the hooks from real input shapes agree with the analytic per-chunk figure.
        assert data["breakdown"]["transformer_pflop_per_chunk"] == pytest.approx(result["flops"]["pflop_per_chunk"],
                                                                                 rel=1e-4)
    assert result["diffusers"]["runs"][0]["block_noise_patched"] is True  # CPU LAPACK needs the float64 factor
    ratio = result["ratio_ours_over_diffusers"]
    assert ratio["e2e_fps"] == pytest.approx(result["ours"]["e2e_fps"] / result["diffusers"]["e2e_fps"], rel=1e-3)


@pytest.mark.parametrize(("preset", "steps", "forwards"), [("mid", [1, 1, 1], [2, 2, 2]), ("base", [2], [4])])
def test_tiny_bench_guided_presets_count_both_guidance_passes(preset, steps, forwards):
    result = run_speed_bench(preset=preset, steps=steps, height=64, width=64, num_frames=9, full_size=False,
                             device="cpu", with_diffusers=preset == "base", overrides=SMALL_CHUNKS)
    breakdown = result["ours"]["breakdown"]
    assert breakdown["forwards_by_stage"] == forwards  # cond + uncond per step
    assert len(breakdown["transformer_s_by_stage"]) == len(steps)
    assert result["ours"]["frames"] == 9 and _positive_finite(result["ours"]["e2e_fps"])
    if preset == "base":
        assert result["diffusers"]["breakdown"]["forwards_by_stage"] == forwards
        assert result["diffusers"]["frames"] == 9
    else:
        assert result["diffusers"] is None and result["ratio_ours_over_diffusers"] is None


def test_guidance_coarse_stages_count_the_unconditional_forward_in_those_stages_only():
    overrides = {**SMALL_CHUNKS, "sampler.guidance_coarse_stages": 1}
    result = run_speed_bench(preset="mid", steps=[1, 1, 1], height=64, width=64, num_frames=9, full_size=False,
                             device="cpu", with_diffusers=False, overrides=overrides)
    assert result["ours"]["breakdown"]["forwards_by_stage"] == [2, 1, 1]
    per_forward = result["flops"]["pflop_per_forward_by_stage"]
    assert result["flops"]["pflop_per_chunk"] == pytest.approx(2 * per_forward[0] + per_forward[1] + per_forward[2],
                                                             rel=1e-3)  # the report rounds
    assert result["sampler"]["guidance_coarse_stages"] == 1
    # diffusers guides every stage: timing it beside this config would compare different work
    with pytest.raises(ConfigError, match="guidance_coarse_stages"):
        run_speed_bench(preset="mid", steps=[1, 1, 1], height=64, width=64, num_frames=9, full_size=False,
                        device="cpu", with_diffusers=True, overrides=overrides)


def test_quantized_bench_times_diffusers_on_the_unquantized_weights_first(monkeypatch):
    """runtime.quantize rewrites the shared transformer for good: diffusers must run before it, the pixel difference
    of the quantized first chunk must be reported, and the process cannot go back. A stand-in quantizer (weights x1.5,
    so outputs visibly move) lets the order be checked on a CPU; the real fp8 is tested in tests/model."""
    from helios_core.bench import speed

    events = []
    models = build_bench_models(full_size=False, device="cpu")

    def fake_quantize(transformer, choice):
        events.append("quantize")
        with torch.no_grad():
            for name, module in transformer.named_modules():
                if isinstance(module, torch.nn.Linear) and name.startswith("blocks."):
                    module.weight.mul_(1.5)
        return 1

    original_diffusers_side = speed._time_diffusers_side

    def diffusers_side(*args, **kwargs):
        events.append("diffusers")
        return original_diffusers_side(*args, **kwargs)

    monkeypatch.setattr(speed, "quantize_transformer", fake_quantize)
    monkeypatch.setattr("helios_core.model.runtime_checks.require_quantization", lambda choice, device: None)
    monkeypatch.setattr(speed, "_time_diffusers_side", diffusers_side)
    common = dict(preset="distilled", steps=[1, 1, 1], height=64, width=64, num_frames=9, full_size=False,
                  device="cpu", models=models)
    result = run_speed_bench(**common, overrides={**SMALL_CHUNKS, "runtime.quantize": "fp8"})
    assert events == ["diffusers", "quantize"]
    assert result["quantize"] == "fp8" and result["diffusers"]["e2e_fps"] > 0
    assert result["quantize_pixel_difference"]["mean_abs_levels"] > 0
    with pytest.raises(ConfigError, match="already quantized"):
        run_speed_bench(**common, overrides=SMALL_CHUNKS)


@pytest.mark.parametrize("decode", ["frames", "whole"])
def test_bf16_vae_on_our_side_is_a_separate_copy_timed_on_its_own(decode):
    """runtime.vae_dtype=bf16 gives our side its own bf16 VAE (diffusers keeps the shared fp32 one), built while the
    recorder's hook sits on the shared VAE, and its decodes are still timed once per chunk (H100 run 5 crashed here:
    a deep copy carried the hook, which fed bf16 latents to the fp32 VAE)."""
    result = run_speed_bench(preset="distilled", steps=[1, 1, 1], height=64, width=64, num_frames=9, full_size=False,
                             device="cpu", with_diffusers=False,
                             overrides={**SMALL_CHUNKS, "runtime.vae_dtype": "bf16", "runtime.vae_decode": decode})
    run = result["ours"]["runs"][0]
    assert result["vae"] == {"dtype": "bf16", "decode": decode, "norm": "auto"}
    assert run["chunks"] == 1 and len(run["per_chunk"]) == 1 and run["per_chunk"][0]["vae_s"] > 0
    assert result["model"]["vae_dtype"] == "float32"  # the shared VAE is untouched


def test_flop_count_matches_hand_computation_for_tiny_config():
    config = tiny_transformer_config()  # dim 64 (2 heads x 32), ffn 128, 2 layers, text_dim 32, patch (1, 2, 2)
    # noisy 9x8x12 latents -> 9*4*6 = 216 tokens; short (anchor + 1) 2x8x12 -> 2*4*6 = 48; mid 2 frames with
    # kernel (2, 4, 4) -> 1*2*3 = 6; long 16 frames with kernel (4, 8, 8), 8x12 padded to 8x16 -> 4*1*2 = 8.
    tokens = forward_tokens(config, (1, 16, 9, 8, 12), (1, 16, 2, 8, 12), (1, 16, 2, 8, 12), (1, 16, 16, 8, 12),
                            text_tokens=20)
    assert tokens == ForwardTokens(noisy=216, short=48, mid=6, long=8, text=20)
    d, f, n, q, t = 64, 128, 278, 216, 20  # q: cross-attention queries = noisy tokens (guidance_cross_attn)
    per_layer_linear = 2 * n * 4 * d * d + 2 * q * 2 * d * d + 2 * t * 2 * d * d + 2 * n * 2 * d * f
    embeddings = (2 * d * 64 * (216 + 48) + 2 * d * 512 * 6 + 2 * d * 4096 * 8  # patch convs: 16 ch x kernel
                  + 2 * t * (32 * d + d * d)  # text projection
                  + 2 * 2 * (256 * d + d * d + d * 6 * d)  # time embedding, twice (history gets t = 0)
                  + 2 * q * d * 64)  # proj_out
    flops = forward_flops(config, tokens)
    assert flops.linear == 2 * per_layer_linear
    assert flops.self_attention == 2 * 4 * n * n * d
    assert flops.cross_attention == 2 * 4 * q * t * d
    assert flops.embeddings == embeddings
    assert flops.total == flops.linear + flops.self_attention + flops.cross_attention + flops.embeddings


def test_flop_count_equals_torch_flop_counter_on_a_real_forward():
    config = tiny_transformer_config()
    torch.manual_seed(0)
    model = HeliosTransformer3DModel(**config).eval()
    shapes = {"hidden_states": (1, 16, 9, 8, 12), "latents_history_short": (1, 16, 2, 8, 12),
              "latents_history_mid": (1, 16, 2, 8, 12), "latents_history_long": (1, 16, 16, 8, 12)}
    inputs = {name: torch.randn(shape) for name, shape in shapes.items()}
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(**inputs, timestep=torch.tensor([500]), encoder_hidden_states=torch.randn(1, 20, 32),
              indices_hidden_states=torch.arange(20, 29)[None], indices_latents_history_short=torch.tensor([[0, 19]]),
              indices_latents_history_mid=torch.tensor([[17, 18]]),
              indices_latents_history_long=torch.arange(1, 17)[None], return_dict=False)
    tokens = forward_tokens(config, shapes["hidden_states"], shapes["latents_history_short"],
                            shapes["latents_history_mid"], shapes["latents_history_long"], text_tokens=20)
    assert forward_flops(config, tokens).total == counter.get_total_flops()


def test_full_size_token_counts_at_384x640_match_the_released_model():
    config = full_transformer_config()
    history = [(1, 16, 2, 48, 80), (1, 16, 2, 48, 80), (1, 16, 16, 48, 80)]  # anchor + short, mid, long
    noisy = [forward_tokens(config, (1, 16, 9, 48 // s, 80 // s), *history).noisy for s in (4, 2, 1)]
    assert noisy == [540, 2160, 8640]
    assert forward_tokens(config, (1, 16, 9, 48, 80), *history).history == 1920 + 240 + 240


def test_full_size_build_on_meta_matches_the_released_layout():
    models = build_bench_models(full_size=True, device="meta")  # no memory: the real layout and dtypes only
    described = models.describe()
    assert described["transformer_params"] == 14_312_427_584
    assert described["transformer_fp32_params"] == 29_184_000  # diffusers' _keep_in_fp32_modules
    assert described["transformer_dtype"] == "bfloat16" and described["vae_dtype"] == "float32"
    assert models.transformer.blocks[0].norm2.weight.dtype == torch.float32
    assert models.transformer.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert models.transformer.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32


@pytest.mark.parametrize(("argv", "message"), [
    (["--device", "cpu"], "needs a CUDA GPU"),  # full size on a CPU: 27 GiB of weights, refused up front
    (["--tiny", "--device", "cpu", "--steps", "1,x"], "--steps expects integers"),
    (["--tiny", "--device", "cpu", "--preset", "nosuch"], "unknown preset 'nosuch'"),
])
def test_cli_user_errors_are_one_line_messages(argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert message in str(exit_info.value) and "\n" not in str(exit_info.value)

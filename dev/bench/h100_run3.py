"""Third H100 session: the fast path together (Triton norms/RoPE, cuDNN attention, bf16 whole-chunk VAE decode,
regional compile) against diffusers' stock compiled pipeline in one process; 10 s / 60 s memory; a 60 s MP4 written
through the real engine and ffmpeg; UMT5-XXL encode time; ablations; group offload.

    PYTHONUNBUFFERED=1 python3 dev/bench/h100_run3.py --budget-s 500     # on the GPU box ($OUT set by the device tool)

Every step appends one JSON object to $OUT/h100_run3.jsonl as soon as it exists; a failing step records its error
and the run goes on. Steps after the budget are recorded as skipped.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from helios_core.bench.speed import bench_config, run_speed_bench  # noqa: E402
from helios_core.bench.speed_models import build_bench_models  # noqa: E402
from helios_core.bench.speed_report import format_table  # noqa: E402
from helios_core.bench.speed_runners import BENCH_PROMPT, our_generator, text_embeddings  # noqa: E402
from helios_core.engine import HeliosEngine  # noqa: E402
from helios_core.kernels import fused_kernels  # noqa: E402
from helios_core.model.attention import attention_backend  # noqa: E402
from helios_core.model.vae import LatentCodec, to_uint8_video  # noqa: E402
from helios_core.request import GenerationRequest  # noqa: E402
from helios_core.runner import run_to_file  # noqa: E402

FAST = {"runtime.kernels": "triton", "runtime.attention": "cudnn", "runtime.vae_dtype": "bf16",
        "runtime.vae_decode": "whole"}
STARTED = time.perf_counter()
OUT = Path(os.environ.get("OUT", "/tmp/helios-bench-out"))
RESULTS = {"file": "h100_run3.jsonl"}  # run 4 imports these helpers and writes its own file


def record(name: str, result: dict) -> None:
    result = {"step": name, "at_s": round(time.perf_counter() - STARTED, 1), **result}
    with (OUT / RESULTS["file"]).open("a") as handle:
        handle.write(json.dumps(result) + "\n")
    print(format_table(result) if "ours" in result else json.dumps(result)[:1500], flush=True)
    print(f"[{name}] done at {result['at_s']} s", flush=True)


def step(name: str, budget_s: float, fn) -> None:
    if time.perf_counter() - STARTED > budget_s:
        record(name, {"skipped": "budget"})
        return
    try:
        record(name, fn())
    except Exception as err:  # noqa: BLE001 - one failed step must not lose the others
        traceback.print_exc()
        record(name, {"error": f"{type(err).__name__}: {err}"[:600]})
    gc.collect()
    torch.cuda.empty_cache()


def cuda_seconds(fn, iters: int = 3) -> tuple[float, object]:
    output = fn()  # warm-up (cuDNN autotuning, allocations)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        output = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters, output


def vae_variants(models) -> dict:
    """One 9-latent chunk at 384x640 (33 frames): decode time and pixel difference against the fp32 reference."""
    latents = torch.randn(1, 16, 9, 48, 80, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    results, reference = {}, None
    for dtype_name, decode, benchmark in [("fp32", "frames", False), ("bf16", "frames", False),
                                          ("fp32", "whole", False), ("bf16", "whole", False),
                                          ("bf16", "frames", True), ("bf16", "whole", True)]:
        torch.backends.cudnn.benchmark = benchmark
        vae = models.vae_in(torch.float32 if dtype_name == "fp32" else torch.bfloat16)
        codec = LatentCodec(vae, whole_chunk_decode=decode == "whole")
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        with torch.inference_mode():
            seconds, pixels = cuda_seconds(lambda: to_uint8_video(codec.decode(latents)))
        frames = pixels.cpu().to(torch.int16)
        reference = frames if reference is None else reference
        difference = (frames - reference).abs().float()
        results[f"{dtype_name}_{decode}_benchmark{int(benchmark)}"] = {
            "seconds": round(seconds, 4), "mean_abs_levels_vs_fp32_frames": round(difference.mean().item(), 4),
            "max_abs_levels": int(difference.max().item()),
            "peak_extra_gib": round((torch.cuda.max_memory_allocated() - base) / 2**30, 2)}
    torch.backends.cudnn.benchmark = False
    return {"vae_decode_one_chunk": results, "note": "random latents, random-weight Wan 2.1 VAE; levels of 255"}


class EmbedsEngine:
    """HeliosEngine over the bench's in-memory models, fed the bench's prompt embeddings (no UMT5 here)."""

    model_name = "random-weights-14B"

    def __init__(self, engine: HeliosEngine, embeds: dict) -> None:
        self.engine, self.embeds = engine, embeds

    def plan(self, request):
        return self.engine.plan(request)

    def generate(self, request):
        return self.engine.generate(request, text_embeds=self.embeds)


def sixty_seconds_to_mp4(models, seconds: float, fast: dict | None = None) -> dict:
    frames = int(round(seconds * 24))
    fast = FAST if fast is None else fast
    config = bench_config("distilled", [1, 1, 1], 384, 640, frames, fast).with_values({"video.trim": "request"})
    runtime = config.runtime
    engine = EmbedsEngine(HeliosEngine(our_generator(models, config), None, Path("random-14B"), runtime),
                          text_embeddings(models, config, 0))
    output = OUT / f"sixty_{int(seconds)}s.mp4"
    output.unlink(missing_ok=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    with attention_backend(models.transformer, runtime.attention), fused_kernels(models.transformer, runtime.kernels):
        started = time.perf_counter()
        result = run_to_file(engine, GenerationRequest(config=config, seed=0, prompt=BENCH_PROMPT), output,
                             overwrite=True)
        wall = time.perf_counter() - started
    size = output.stat().st_size
    output.unlink()  # 60 s of random-weight noise is not worth carrying back
    return {"video_seconds": seconds, "frames": result.frames, "wall_s_after_load": round(wall, 2),
            "faster_than_real_time": wall < seconds, "fps_incl_writing": round(result.frames / wall, 2),
            "mp4_bytes": size, "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
            "scope": "run_to_file: all denoising, decode, drift detector, ffmpeg encode and sidecar; model already "
                     "loaded and compiled; random prompt embeddings (UMT5 timed separately)"}


def umt5_xxl() -> dict:
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                        feed_forward_proj="gated-gelu", is_encoder_decoder=False)
    base = torch.cuda.memory_allocated()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            encoder = UMT5EncoderModel(config).eval()
    finally:
        torch.set_default_dtype(previous)
    params = sum(p.numel() for p in encoder.parameters())
    ids = torch.randint(0, 256384, (1, 512), device="cuda")
    mask = torch.zeros(1, 512, dtype=torch.long, device="cuda")
    mask[:, :24] = 1  # a typical prompt: ~24 tokens, padded to 512 as the pipelines do
    with torch.inference_mode():
        seconds, _ = cuda_seconds(lambda: encoder(input_ids=ids, attention_mask=mask).last_hidden_state, iters=5)
    on_gpu_gib = (torch.cuda.memory_allocated() - base) / 2**30
    start = time.perf_counter()
    encoder.to("cpu")
    torch.cuda.synchronize()
    to_cpu_s = time.perf_counter() - start
    after_gib = (torch.cuda.memory_allocated() - base) / 2**30
    del encoder
    return {"umt5_xxl_params": params, "encode_512_tokens_s": round(seconds, 4), "weights_on_gpu_gib": round(on_gpu_gib, 2),
            "move_to_cpu_s": round(to_cpu_s, 2), "gpu_gib_after_leaving": round(after_gib, 3)}


def offload_group(models, common: dict) -> dict:
    """Last (it moves the 14B weights off the GPU): diffusers' group offload, one block at a time with prefetch on a
    side stream, as `--offload group` does; eager, 66 frames (2 chunks)."""
    models.transformer.to("cpu")
    gc.collect()
    torch.cuda.empty_cache()
    started = time.perf_counter()
    models.transformer.enable_group_offload(onload_device=torch.device("cuda"), offload_device=torch.device("cpu"),
                                            offload_type="block_level", num_blocks_per_group=1, use_stream=True)
    setup_s = time.perf_counter() - started
    result = run_speed_bench(**{**common, "num_frames": 66}, overrides={**FAST, "runtime.kernels": "torch"},
                             with_diffusers=False)
    result["offload_setup_s"] = round(setup_s, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=500)
    budget = parser.parse_args().budget_s
    OUT.mkdir(parents=True, exist_ok=True)
    models = build_bench_models(full_size=True, device="cuda")
    record("built", {"build_s": round(time.perf_counter() - STARTED, 1), "model": models.describe()})
    common = dict(preset="distilled", steps=[1, 1, 1], full_size=True, device="cuda", models=models, height=384,
                  width=640, num_frames=165)

    step("vae_variants", budget, lambda: vae_variants(models))
    step("headline_compiled_fast_vs_diffusers_compiled", budget,
         lambda: run_speed_bench(**common, repeats=2, compile=True, overrides=FAST))
    step("ours_fast_compiled_10s", budget,
         lambda: run_speed_bench(**{**common, "num_frames": 240}, compile=True, overrides=FAST, with_diffusers=False))
    step("ours_fast_60s_to_mp4", budget, lambda: sixty_seconds_to_mp4(models, 60.0))
    step("umt5_xxl", budget, umt5_xxl)
    for name, change in [("no_triton", {"runtime.kernels": "torch"}), ("no_cudnn", {"runtime.attention": "sdpa"}),
                         ("vae_bf16_frames", {"runtime.vae_decode": "frames"})]:
        step(f"ablation_{name}", budget, lambda change=change: run_speed_bench(
            **common, compile=True, overrides={**FAST, **change}, with_diffusers=False))
    step("ours_fast_eager", budget, lambda: run_speed_bench(**common, overrides=FAST, with_diffusers=False))
    step("offload_group_eager_66_frames", budget, lambda: offload_group(models, common))
    print(f"total {time.perf_counter() - STARTED:.0f} s", flush=True)


if __name__ == "__main__":
    main()

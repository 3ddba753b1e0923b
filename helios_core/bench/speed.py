"""`helios bench speed`: our engine against diffusers' Helios pipeline, same weights and shapes, one process.

    run_speed_bench(preset="distilled", steps=[1, 1, 1])  -> JSON-able dict (schema below)
    python -m helios_core.bench.speed --preset distilled --steps 1,1,1   # table, then the JSON as the LAST line

What it does, in order: build random-weight models (`speed_models`: full 14B bf16 transformer + fp32 Wan VAE on the
GPU, or tiny ones), optionally compile the transformer's repeated blocks (regional: one graph per pyramid shape,
shared by both sides since it is the same module); then per side a one-chunk warm-up video (untimed, absorbs
compilation and cuDNN/cuBLAS set-up) and `repeats` timed videos (`speed_runners`, `speed_timing`).

Scope of "end-to-end" (stated in the JSON's `scope`): everything inside the generate call, i.e. noise, every
transformer forward, scheduler steps, pyramid resampling, per-chunk VAE decode and frames to the host; model build
excluded; the UMT5 text encoder is NOT run (random prompt embeddings of its output shape, (1, 512, 4096)), and no
file is written. The paper's 19.5 FPS includes text encoding (tens of ms per video on an H100).

Result keys: bench, scope, environment, preset, sampler, video, compile, kernels, attention, quantize,
quantize_pixel_difference (quantized: first chunk vs bf16, else null), offload, vae (our side's dtype and
decode), repeats, seed, overrides, model,
weights_allocated_gib, flops (PFLOP per forward by stage, per chunk), ours, diffusers (or null),
ratio_ours_over_diffusers (or null). Each side: warmup_s, e2e_fps, e2e_s, steady_fps, first_chunk_s, frames,
peak_allocated_gib, peak_reserved_gib, breakdown (steady-chunk seconds: transformer by stage, VAE, rest; TFLOP/s,
utilisation) and runs (per repeat, with per-chunk records). Only `main` prints.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import diffusers
import torch

from helios_core.bench.speed_flops import H100_DENSE_BF16_TFLOPS, forward_flops, forward_tokens
from helios_core.bench.speed_models import TEXT_TOKENS, BenchModels, build_bench_models
from helios_core.bench.speed_report import format_table, rounded, summarise_side
from helios_core.bench.speed_timing import ChunkRecorder, Clock
from helios_core.bench.speed_runners import (
    TimedVideo,
    build_diffusers_pipeline,
    first_chunk_frames,
    recorder_for,
    text_embeddings,
    time_diffusers,
    time_ours,
)
from helios_core.config import GenerationConfig
from helios_core.devices import resolve_device
from helios_core.errors import ConfigError, UserInputError
from helios_core.kernels import fused_kernels
from helios_core.model.attention import attention_backend
from helios_core.model.offload import enable_group_offload
from helios_core.model.quantize import quantize_transformer
from helios_core.model.runtime_checks import require_runtime_choices
from helios_core.pipeline import plan_frames
from helios_core.presets import load_preset, parse_set_option

SCOPE = ("end-to-end = host wall time of the whole generate call after a one-chunk warm-up: noise, all transformer "
         "forwards, scheduler steps, per-chunk VAE decode, frames to host. Excluded: model build, text encoder (UMT5 "
         "not run: random prompt embeddings (1, 512, text_dim)), file writing. Chunk times are device-timeline "
         "(CUDA events) from one chunk's decode end to the next's.")


def bench_config(preset: str, steps: list[int] | None, height: int, width: int, num_frames: int,
                 overrides: dict[str, Any] | None = None) -> GenerationConfig:
    """The preset with the bench's size and length; trim "reference" so both sides return the same frame count.
    `overrides` are dotted config keys as `--set` takes them (e.g. {"sampler.amplify_first_chunk": True})."""
    values: dict[str, Any] = {"video.height": height, "video.width": width, "video.num_frames": num_frames,
                              "video.trim": "reference"}
    if steps is not None:
        values["sampler.steps"] = list(steps)
    return load_preset(preset).with_values({**values, **(overrides or {})})


def flops_summary(models: BenchModels, config: GenerationConfig) -> dict[str, Any]:
    """FLOPs of one forward per pyramid stage at this size (history full), and of one chunk's forwards."""
    scale = models.vae.config.scale_factor_spatial
    h, w = config.video.height // scale, config.video.width // scale
    long, mid, short = config.history.sizes
    frames = config.history.latent_frames_per_chunk
    stages = config.sampler.num_stages
    per_forward = []
    for stage in range(stages):
        shrink = 2 ** (stages - 1 - stage)
        tokens = forward_tokens(models.transformer_config, (1, 16, frames, h // shrink, w // shrink),
                                (1, 16, 1 + short, h, w), (1, 16, mid, h, w), (1, 16, long, h, w), TEXT_TOKENS)
        per_forward.append(forward_flops(models.transformer_config, tokens).total)
    sampler = config.sampler
    per_chunk = sum(f * n * (2 if sampler.guided(stage) else 1)
                    for stage, (f, n) in enumerate(zip(per_forward, sampler.steps, strict=True)))
    return {"pflop_per_forward_by_stage": [f / 1e15 for f in per_forward], "pflop_per_chunk": per_chunk / 1e15,
            "peak_tflops": H100_DENSE_BF16_TFLOPS}


def environment(device: torch.device) -> dict[str, Any]:
    env = {"device": "cpu" if device.type != "cuda" else torch.cuda.get_device_name(device),
           "torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        env.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   total_memory_gib=torch.cuda.get_device_properties(device).total_memory / 2**30)
    return env


def _bench_device(name: str, full_size: bool) -> torch.device:
    device = resolve_device(name, no_gpu_hint="use --tiny --device cpu")
    if full_size and device.type != "cuda":
        raise ConfigError("the full-size bench needs a CUDA GPU (27 GiB of bf16 weights); use --tiny on a CPU")
    return device


def _time_side(run_one, config: GenerationConfig, repeats: int) -> tuple[float, list[TimedVideo]]:
    """A one-chunk warm-up video (untimed beyond its wall clock), then `repeats` timed videos."""
    warmup_config = config.with_values({"video.num_frames": plan_frames(config).chunk_pixel_frames})
    started = time.perf_counter()
    run_one(warmup_config)
    warmup_s = time.perf_counter() - started
    return warmup_s, [run_one(config) for _ in range(repeats)]


def _time_diffusers_side(models: BenchModels, config: GenerationConfig, embeds: dict[str, torch.Tensor], seed: int,
                         recorder: ChunkRecorder, repeats: int) -> dict[str, Any]:
    """diffusers' numbers, or {"error": ...}: the peer's own bugs (e.g. its CFG-Zero* `.view` on a 1x1 stage-0
    grid) must not hide our measurement, but are reported, not skipped silently."""
    chunk_frames = plan_frames(config).chunk_pixel_frames
    try:
        pipe = build_diffusers_pipeline(models, config)
        warmup_s, videos = _time_side(lambda cfg: time_diffusers(pipe, models, cfg, embeds, seed, recorder),
                                      config, repeats)
    except Exception as err:  # noqa: BLE001 - any peer failure is data for the report
        return {"error": f"{type(err).__name__}: {err}"}
    return summarise_side(videos, warmup_s, chunk_frames)


def run_speed_bench(*, preset: str, steps: list[int] | None, height: int = 384, width: int = 640,
                    num_frames: int = 165, full_size: bool = True, compile: bool = False, with_diffusers: bool = True,
                    device: str = "cuda", repeats: int = 1, seed: int = 0,
                    overrides: dict[str, Any] | None = None, models: BenchModels | None = None) -> dict[str, Any]:
    """Time our engine (and diffusers) on one config; `models` reuses already-built models (same process)."""
    config = bench_config(preset, steps, height, width, num_frames, overrides)
    if with_diffusers and config.sampler.partly_guided:
        raise ConfigError("sampler.guidance_coarse_stages has no equivalent in diffusers' pipeline (it guides every "
                          "stage); pass --no-diffusers to time our side alone")
    torch_device = _bench_device(device, full_size and models is None)
    # Before the 14B build; the full-size models are bf16, the tiny ones fp32.
    require_runtime_choices(config.runtime, torch_device, torch.bfloat16 if full_size else torch.float32,
                            compile=compile)
    if models is None:
        models = build_bench_models(full_size=full_size, device=torch_device, seed=seed)
    if config.runtime.offload == "group" and not getattr(models.transformer, "_helios_bench_offloaded", False):
        # As the engine: weights to CPU memory, streamed block by block (final for this process's bench models).
        models.transformer.to("cpu")
        torch.cuda.empty_cache()
        enable_group_offload(models.transformer, torch_device)
        models.transformer._helios_bench_offloaded = True
    if compile and not getattr(models.transformer, "_helios_bench_compiled", False):
        # Regional compilation, as HeliosEngine.load does with runtime.compile: static shapes, one graph per stage.
        models.transformer.compile_repeated_blocks(fullgraph=True, dynamic=False)
        models.transformer._helios_bench_compiled = True
    weights_gib = torch.cuda.memory_allocated(torch_device) / 2**30 if torch_device.type == "cuda" else None
    embeds = text_embeddings(models, config, seed)
    chunk_frames = plan_frames(config).chunk_pixel_frames
    recorder = recorder_for(models, config, Clock(torch_device))

    quantize = config.runtime.quantize
    already = getattr(models.transformer, "_helios_bench_quantized", "none")
    if already != "none" and quantize != already:
        raise ConfigError(f"this process's bench transformer is already quantized ({already}); it cannot be undone")
    theirs, pixel_difference = None, None
    with recorder:
        if quantize != "none" and already == "none":
            # Quantising rewrites the shared module in place, for good: diffusers runs first, on the bf16 weights,
            # and our bf16 first chunk is kept to report how far the quantized path moves the pixels.
            if with_diffusers:
                theirs = _time_diffusers_side(models, config, embeds, seed, recorder, repeats)
            bf16_chunk = first_chunk_frames(models, config, embeds, seed)
            quantize_transformer(models.transformer, quantize)
            models.transformer._helios_bench_quantized = quantize
        # --set runtime.kernels=triton: the fused Triton kernels on our side only; diffusers keeps its stock modules.
        # runtime.attention, likewise ours only; entered first so the fused processors inherit it (and the stock
        # processors get their own backend back before diffusers runs).
        with attention_backend(models.transformer, config.runtime.attention), \
                fused_kernels(models.transformer, config.runtime.kernels, torch_device):
            warmup_s, videos = _time_side(lambda cfg: time_ours(models, cfg, embeds, seed, recorder), config, repeats)
            if quantize != "none" and already == "none":
                moved = (first_chunk_frames(models, config, embeds, seed).int() - bf16_chunk.int()).abs().float()
                pixel_difference = {"mean_abs_levels": moved.mean().item(), "max_abs_levels": int(moved.max().item()),
                                    "what": "first chunk, uint8 levels, quantized vs bf16 transformer, same seed"}
        ours = summarise_side(videos, warmup_s, chunk_frames)
        if with_diffusers and theirs is None:
            theirs = _time_diffusers_side(models, config, embeds, seed, recorder, repeats)

    ratio = None
    if theirs is not None and "error" not in theirs:
        ratio = {key: ours[key] / theirs[key] for key in ("e2e_fps", "steady_fps")}
    sampler = config.sampler
    return rounded({
        "bench": "helios speed",
        "scope": SCOPE,
        "environment": environment(torch_device),
        "preset": config.preset,
        "sampler": {"kind": sampler.kind, "steps": list(sampler.steps), "guidance_scale": sampler.guidance_scale,
                    "guidance_coarse_stages": sampler.guidance_coarse_stages,
                    "amplify_first_chunk": sampler.amplify_first_chunk},
        "video": {"height": height, "width": width, "num_frames": num_frames, "chunks": plan_frames(config).num_chunks,
                  "chunk_frames": chunk_frames, "trim": config.video.trim},
        "compile": compile,
        "kernels": config.runtime.kernels,
        "attention": config.runtime.attention,
        "quantize": quantize,
        "offload": config.runtime.offload,
        "quantize_pixel_difference": pixel_difference,
        "vae": {"dtype": config.runtime.vae_dtype, "decode": config.runtime.vae_decode,
                "norm": config.runtime.vae_norm},
        "repeats": repeats,
        "seed": seed,
        "overrides": overrides or {},
        "model": models.describe(),
        "weights_allocated_gib": weights_gib,
        "flops": flops_summary(models, config),
        "ours": ours,
        "diffusers": theirs,
        "ratio_ours_over_diffusers": ratio,
    })


def parse_steps(text: str | None) -> list[int] | None:
    """`"1,1,1"` -> [1, 1, 1]; None or "" -> None (the preset's steps)."""
    if text in (None, ""):
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--steps expects integers separated by commas, e.g. 1,1,1; got '{text}'") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helios_core.bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="distilled")
    parser.add_argument("--steps", default=None, help="steps per pyramid stage, e.g. 1,1,1 (default: the preset's)")
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--num-frames", type=int, default=165)
    parser.add_argument("--tiny", action="store_true", help="tiny random model instead of the full 14B")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-diffusers", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. sampler.amplify_first_chunk=true (repeatable)")
    args = parser.parse_args(argv)
    try:
        overrides = dict(parse_set_option(item) for item in args.set)
        result = run_speed_bench(preset=args.preset, steps=parse_steps(args.steps), height=args.height,
                                 width=args.width, num_frames=args.num_frames, full_size=not args.tiny,
                                 compile=args.compile, with_diffusers=not args.no_diffusers, device=args.device,
                                 repeats=args.repeats, seed=args.seed, overrides=overrides)
    except UserInputError as err:
        raise SystemExit(f"error: {err}") from None
    print(format_table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Sixth H100 session (issue 7, the 30 FPS target): run 5's FP8 path plus the fused Triton RMS-norm + SiLU in the
whole-chunk VAE decode (runtime.vae_norm), against diffusers' compiled pipeline in the same process; then 240
frames ours only, 10 s vs 60 s peak, and a 60 s MP4 through the engine and ffmpeg.

    PYTHONUNBUFFERED=1 python3 dev/bench/h100_run6.py --budget-s 330     # on the GPU box ($OUT set by the device tool)

One JSON object per step in $OUT/h100_run6.jsonl, written as each step ends (run 3's helpers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import h100_run3 as run3  # noqa: E402
import torch  # noqa: E402

from helios_core.bench.speed import run_speed_bench  # noqa: E402
from helios_core.bench.speed_models import build_bench_models  # noqa: E402

FP8 = {"runtime.kernels": "torch", "runtime.attention": "cudnn", "runtime.vae_dtype": "bf16",
       "runtime.vae_decode": "whole", "runtime.quantize": "fp8"}
FP8_FUSED_VAE = {**FP8, "runtime.vae_norm": "triton"}
FP8_TORCH_VAE = {**FP8, "runtime.vae_norm": "torch"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=330)
    args = parser.parse_args()
    budget = args.budget_s
    torch._dynamo.config.recompile_limit = 64  # one process compiles several variants of the same block (run 4)
    torch._dynamo.config.accumulated_recompile_limit = 1024
    run3.RESULTS["file"] = "h100_run6.jsonl"
    run3.OUT.mkdir(parents=True, exist_ok=True)
    models = build_bench_models(full_size=True, device="cuda")
    common = dict(preset="distilled", steps=[1, 1, 1], full_size=True, device="cuda", models=models, height=384,
                  width=640, num_frames=165, compile=True)
    # The transformer is FP8 from the first step on (quantising is in place and final), as in run 5.
    run3.step("fp8_fusedvae_vs_diffusers_compiled", budget,
              lambda: run_speed_bench(**common, repeats=2, overrides=FP8_FUSED_VAE))
    run3.step("fp8_torchvae_ours_only", budget,
              lambda: run_speed_bench(**common, repeats=2, overrides=FP8_TORCH_VAE, with_diffusers=False))
    run3.step("fp8_fusedvae_240", budget,
              lambda: run_speed_bench(**{**common, "num_frames": 240}, overrides=FP8_FUSED_VAE, with_diffusers=False))
    run3.step("fp8_fusedvae_60s_to_mp4", budget, lambda: run3.sixty_seconds_to_mp4(models, 60.0, FP8_FUSED_VAE))
    print(f"total {time.perf_counter() - run3.STARTED:.0f} s", flush=True)


if __name__ == "__main__":
    main()

"""Fourth H100 session: the best bf16 fast path from run 3 (regional compile, cuDNN attention, bf16 whole-chunk VAE;
no Triton norms, which run 3 measured slower than Inductor's own fusion) against diffusers' compiled pipeline, then
the same with FP8 block linears (runtime.quantize=fp8, torchao), its pixel difference, 10 s vs 60 s memory and a 60 s
MP4 through the engine and ffmpeg.

    PYTHONUNBUFFERED=1 python3 dev/bench/h100_run4.py --budget-s 300     # on the GPU box ($OUT set by the device tool)

One JSON object per step in $OUT/h100_run4.jsonl, written as each step ends.
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

BEST_BF16 = {"runtime.kernels": "torch", "runtime.attention": "cudnn", "runtime.vae_dtype": "bf16",
             "runtime.vae_decode": "whole"}
FP8 = {**BEST_BF16, "runtime.quantize": "fp8"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=300)
    parser.add_argument("--fp8-only", action="store_true", help="skip the bf16 step (run 5: it was run 4's)")
    args = parser.parse_args()
    budget = args.budget_s
    # Run 4 hit dynamo's recompile limit (8 per block) with fullgraph=True: one process here compiles the same block
    # for 3 pyramid shapes x {stock sdpa, stock cudnn, fp8} attention/weight variants. The engine compiles one variant.
    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.accumulated_recompile_limit = 1024
    run3.RESULTS["file"] = "h100_run5.jsonl" if args.fp8_only else "h100_run4.jsonl"
    run3.OUT.mkdir(parents=True, exist_ok=True)
    models = build_bench_models(full_size=True, device="cuda")
    common = dict(preset="distilled", steps=[1, 1, 1], full_size=True, device="cuda", models=models, height=384,
                  width=640, num_frames=165, compile=True)
    if not args.fp8_only:
        run3.step("best_bf16_vs_diffusers_compiled", budget,
                  lambda: run_speed_bench(**common, repeats=2, overrides=BEST_BF16))
    # From here on the shared transformer is FP8 (quantising is in place and final).
    run3.step("fp8_vs_diffusers_compiled", budget, lambda: run_speed_bench(**common, repeats=2, overrides=FP8))
    run3.step("fp8_10s", budget, lambda: run_speed_bench(**{**common, "num_frames": 240}, overrides=FP8,
                                                          with_diffusers=False))
    run3.step("fp8_60s_to_mp4", budget, lambda: run3.sixty_seconds_to_mp4(models, 60.0, FP8))
    print(f"total {time.perf_counter() - run3.STARTED:.0f} s", flush=True)


if __name__ == "__main__":
    main()

"""The one H100 session of the speed bench: several configs in one process, models built once.

    PYTHONUNBUFFERED=1 python3 dev/bench/h100_run.py            # on the GPU box ($OUT set by the device tool)
    python dev/bench/h100_run.py --tiny                          # CPU dry run of the same sequence

Order (each step is skipped, and says so, when the time left would not cover it):
1. distilled [1,1,1] eager, ours vs diffusers, 165 frames, 2 timed repeats each;
2. ours only, eager, 10 s (240 frames asked) and 60 s (1440 asked) videos, for peak memory;
3. distilled [1,1,1] with regional compile, ours vs diffusers (compiling changes the shared transformer, so last).
Each result is appended to $OUT/h100.jsonl as soon as it exists, so a run cut short still returns what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from helios_core.bench.speed import run_speed_bench  # noqa: E402
from helios_core.bench.speed_models import build_bench_models  # noqa: E402
from helios_core.bench.speed_report import format_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--budget-s", type=float, default=540.0, help="stop starting new steps past this")
    args = parser.parse_args()
    started = time.perf_counter()
    out = Path(os.environ.get("OUT", "/tmp/helios-bench-out"))
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "h100.jsonl"
    device = "cpu" if args.tiny else "cuda"
    size = dict(height=64, width=64) if args.tiny else dict(height=384, width=640)
    frames_10s, frames_60s = (30, 120) if args.tiny else (240, 1440)

    build_started = time.perf_counter()
    models = build_bench_models(full_size=not args.tiny, device=device)
    print(f"built models in {time.perf_counter() - build_started:.1f} s: {models.describe()}", flush=True)

    def elapsed() -> float:
        return time.perf_counter() - started

    def step(name: str, estimate_s: float, **kwargs) -> dict | None:
        if elapsed() + estimate_s > args.budget_s:
            print(f"SKIPPED {name}: {elapsed():.0f} s used, needs ~{estimate_s:.0f} s, budget {args.budget_s:.0f} s",
                  flush=True)
            return None
        step_started = time.perf_counter()
        result = run_speed_bench(preset="distilled", steps=[1, 1, 1], full_size=not args.tiny, device=device,
                                 models=models, **size, **kwargs)
        result["step"] = name
        result["step_wall_s"] = round(time.perf_counter() - step_started, 1)
        with jsonl.open("a") as handle:
            handle.write(json.dumps(result) + "\n")
        print(format_table(result), flush=True)
        print(f"[{name}] {result['step_wall_s']} s, total {elapsed():.0f} s", flush=True)
        return result

    eager = step("eager_111", 0, num_frames=165, repeats=2)
    chunk_s = eager["ours"]["breakdown"]["chunk_s"]
    step("memory_10s", 10 * chunk_s, num_frames=frames_10s, with_diffusers=False)
    # 44 chunks plus a warm-up chunk; keep ~150 s for the compiled comparison after it.
    step("memory_60s", 46 * chunk_s + 150, num_frames=frames_60s, with_diffusers=False)
    step("compile_111", 120, num_frames=165, repeats=2, compile=True)
    print(f"done in {elapsed():.0f} s", flush=True)


if __name__ == "__main__":
    main()

"""Time the embedded model's mid-stage training step per pyramid level, eager against `loop.compile`, side by side.

Run on the GPU machine before a training call (the last line is one JSON object):

    python3 dev/bench/train_step_bench.py --batch-size 64 --steps 12 --budget-s 150

Each mode builds the transformer afresh from the shipped folder's config (random weights: speed does not depend on
them), with the trainer's own pieces: `load_transformer` (fp32 master weights, `loop.compile` as the trainer applies
it), `MidStage.loss` on a synthetic batch of the prepared data's shapes, bf16 autocast, AdamW and gradient clipping.
The stage's level is pinned per measurement. One eager full-resolution step is also profiled (top kernels by GPU
time), to see what bounds it. Not a test: timings only, on whatever device is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from helios_core.training import load_train_config
from helios_core.training.dataset import TrainingBatch
from helios_core.training.model_setup import load_transformer, trainable_parameters
from helios_core.training.stages.common import HistoryLayout
from helios_core.training.stages.mid import MidStage
from helios_core.training.step_random import StepRandom

MODEL = Path(__file__).resolve().parents[2] / "helios_core" / "default_model"
LATENT_HW = (16, 32)  # 128x256 pixels through the 8x VAE
TEXT_SHAPE = (64, 128)  # max_sequence_length x the random UMT5's width


def synthetic_batch(layout: HistoryLayout, batch_size: int, device: torch.device) -> TrainingBatch:
    generator = torch.Generator("cpu").manual_seed(0)
    h, w = LATENT_HW
    make = lambda *shape: torch.randn(batch_size, *shape, generator=generator).to(device)
    return TrainingBatch(make(16, 9, h, w), make(16, layout.history_frames, h, w), make(16, 1, h, w),
                         make(*TEXT_SHAPE))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_mode(compile_blocks: bool, batch_size: int, steps: int, device: torch.device, deadline: float,
              profile: bool) -> dict:
    config = load_train_config("mid", {"lora.enabled": False, "loop.gradient_checkpointing": False,
                                       "loop.batch_size": batch_size, "loop.compile": compile_blocks})
    precision = "bf16" if device.type == "cuda" else "fp32"
    loaded = load_transformer(MODEL, config, device, torch.float32)
    model = loaded.transformer
    trainables = list(trainable_parameters(model).values())
    optimizer = torch.optim.AdamW(trainables, lr=1e-4)
    layout = HistoryLayout(config.history)
    stage = MidStage(config, layout)
    batch = synthetic_batch(layout, batch_size, device)

    def one_step(step: int) -> float:
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = stage.loss(model, batch, StepRandom(0, step).for_samples(0, batch_size))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainables, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        float(loss.detach())  # the trainer reads the loss every step: one sync, as there
        return time.perf_counter() - started

    result: dict = {"mode": "compile" if compile_blocks else "eager", "levels": {}}
    for level in reversed(range(config.pyramid.num_stages)):  # full size first: most of a run's time
        stage.pick_stage = lambda generator, level=level: level
        started = time.perf_counter()
        first = one_step(0)  # compiles this level's graphs on the compiled path
        times = []
        for step in range(1, steps + 1):
            if time.perf_counter() > deadline:
                break
            times.append(one_step(step))
        result["levels"][str(level)] = {"first_step_s": round(first, 3), "steps": len(times),
                                        "median_step_s": round(statistics.median(times), 4) if times else None,
                                        "warm_up_s": round(time.perf_counter() - started - sum(times), 2)}
        print(json.dumps({"mode": result["mode"], "level": level, **result["levels"][str(level)]}), flush=True)
    if profile and device.type == "cuda":
        stage.pick_stage = lambda generator: config.pyramid.num_stages - 1
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            one_step(steps + 1)
            sync(device)
        table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60)
        print(table, flush=True)
        events = prof.key_averages()
        result["profiled_kernels"] = int(sum(e.count for e in events if e.device_type.name == "CUDA"))
    if device.type == "cuda":
        result["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--budget-s", type=float, default=150.0, help="stop timing new steps after this")
    parser.add_argument("--modes", default="eager,compile")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    deadline = time.perf_counter() + args.budget_s
    results = []
    for mode in args.modes.split(","):
        results.append(time_mode(mode == "compile", args.batch_size, args.steps, device, deadline,
                                 profile=mode == "eager"))
        if device.type == "cuda":  # the finished mode's model is gone: the next one's peak is its own
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    summary = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "batch_size": args.batch_size, "results": results}
    by_mode = {r["mode"]: r["levels"] for r in results}
    if {"eager", "compile"} <= by_mode.keys():
        summary["speedup_by_level"] = {
            level: round(by_mode["eager"][level]["median_step_s"] / by_mode["compile"][level]["median_step_s"], 2)
            for level in by_mode["eager"]
            if by_mode["eager"][level]["median_step_s"] and by_mode["compile"][level]["median_step_s"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

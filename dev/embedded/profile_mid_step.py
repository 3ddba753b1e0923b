"""Where a mid-stage training step of the embedded model spends its time, per pyramid level (one GPU, synthetic data).

The trainer's logs (2026-12-07, H100, batch 64) show full-resolution steps at about 0.52 s against 0.07 s for the
middle level, which has a quarter of the noisy tokens. This script takes the step apart on the same model and
shapes, without a data folder (random latents of the training shapes; the arithmetic does not depend on the values):

- `eager`: the trainer's step as written (noise drawn per sample on the CPU by `sample_noise`, bf16 autocast,
  backward, gradient clipping, AdamW), on an idle CPU;
- `gpu_noise`: the same step with the noise drawn on the GPU, i.e. the step without its CPU part;
- `noise_full_level`: `sample_noise` alone for one full-resolution batch, idle and while N busy processes hold the
  CPU cores as the trainer's data workers do, and the eager step in that situation;
- `profile`: the top CUDA kernels of a full-resolution `gpu_noise` step (torch.profiler);
- `batch128_full_level`: the full-resolution `gpu_noise` step at twice the batch;
- `compiled`: the `gpu_noise` step with `compile_repeated_blocks` (what `loop.compile=true` does), with each level's
  first (compiling) step timed apart.

Usage: python dev/embedded/profile_mid_step.py MODEL_FOLDER --out OUT.json [--batch 64] [--busy 12] [--no-compile]
It is a measuring tool for the model card; the step it measures is the trainer's own (`MidStage.loss`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import torch

from helios_core.bench.train_bench import synthetic_batch
from helios_core.training.config import load_train_config
from helios_core.training.dataset import TrainingBatch
from helios_core.training.model_setup import load_transformer, trainable_parameters
from helios_core.training.stages import mid as mid_module
from helios_core.training.stages.common import HistoryLayout, sample_noise
from helios_core.training.stages.mid import MidStage
from helios_core.training.step_random import StepRandom


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _busy(seconds: float) -> None:
    end = time.time() + seconds
    x = 0
    while time.time() < end:
        x += 1


def build(model: Path, batch: int, device: torch.device):
    """The model loaded eagerly as the trainer loads it (full fine-tuning, fp32 weights); compiled later in place."""
    config = load_train_config("mid", {"lora.enabled": False, "loop.gradient_checkpointing": False,
                                       "loop.batch_size": batch})
    loaded = load_transformer(model, config, device, torch.bfloat16)
    transformer = loaded.transformer
    trainables = trainable_parameters(transformer)
    optimizer = torch.optim.AdamW(list(trainables.values()), lr=1e-5, weight_decay=0.01)
    layout = HistoryLayout(config.history)
    return config, transformer, trainables, optimizer, layout


def time_level(stage: MidStage, transformer, trainables, optimizer, batch: TrainingBatch, level: int, steps: int,
               warmup: int, device: torch.device, step0: int = 0) -> list[float]:
    stage.pick_stage = lambda generator: level
    times = []
    for i in range(warmup + steps):
        sync(device)
        started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = stage.loss(transformer, batch, StepRandom(0, step0 + i).for_samples(0, batch.target.shape[0]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(trainables.values()), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def time_noise(shape: tuple[int, ...], generators: list[torch.Generator], device: torch.device,
               repeats: int = 5) -> list[float]:
    """Seconds of the trainer's `sample_noise` for one batch, including the copy to the device."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        sample_noise(torch.Size(shape), generators, device)
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def gpu_noise(shape, generators, device):
    return torch.randn(tuple(shape), device=device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--busy", type=int, default=12)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu only to check the script itself")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    cuda = device.type == "cuda"
    result: dict = {"device": torch.cuda.get_device_name(device) if cuda else "cpu", "batch": args.batch}
    config, transformer, trainables, optimizer, layout = build(args.model, args.batch, device)
    stage = MidStage(config, layout)
    text_dim = int(transformer.config.text_dim)

    def synthetic(batch_size: int, seed: int) -> TrainingBatch:  # the embedded model's 128x256 and 64 text tokens
        return synthetic_batch(config, layout, text_dim, 128, 256, batch_size, torch.Generator().manual_seed(seed),
                               text_tokens=64).to(device)

    batch = synthetic(args.batch, 0)

    def summary(times: list[float], warmup: int) -> dict:
        kept = times[warmup:]
        return {"median": round(statistics.median(kept), 4), "min": round(min(kept), 4), "first": round(times[0], 3)}

    result["eager"] = {lvl: summary(time_level(stage, transformer, trainables, optimizer, batch, lvl, args.steps, 2,
                                               device), 2) for lvl in range(3)}
    print("eager", result["eager"], flush=True)
    original = mid_module.sample_noise
    mid_module.sample_noise = gpu_noise
    result["gpu_noise"] = {lvl: summary(time_level(stage, transformer, trainables, optimizer, batch, lvl, args.steps,
                                                   2, device), 2) for lvl in range(3)}
    print("gpu_noise", result["gpu_noise"], flush=True)

    # The CPU part alone, idle and with busy processes beside it (the trainer's data workers hold the cores).
    shape = (args.batch, 16, config.history.latent_frames_per_chunk, 16, 32)
    generators = [torch.Generator().manual_seed(i) for i in range(args.batch)]
    idle = time_noise(shape, generators, device)
    context = mp.get_context("spawn")
    workers = [context.Process(target=_busy, args=(20.0,)) for _ in range(args.busy)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    busy = time_noise(shape, generators, device)
    # The full step with the CPU noise, while the cores are busy (the trainer's real situation).
    mid_module.sample_noise = original
    busy_step = time_level(stage, transformer, trainables, optimizer, batch, 2, 4, 1, device)
    for worker in workers:
        worker.terminate()
        worker.join()
    result["noise_full_level"] = {"idle_median": round(statistics.median(idle), 4),
                                  f"busy{args.busy}_median": round(statistics.median(busy), 4),
                                  "eager_step_busy_median": round(statistics.median(busy_step[1:]), 4),
                                  "cpu_count": mp.cpu_count()}
    print("noise", result["noise_full_level"], flush=True)
    mid_module.sample_noise = gpu_noise

    from torch.profiler import ProfilerActivity, profile
    stage.pick_stage = lambda generator: 2
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        time_level(stage, transformer, trainables, optimizer, batch, 2, 2, 0, device, step0=100)
    table = prof.key_averages().table(sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total",
                                      row_limit=25, max_name_column_width=70)
    (args.out.parent / "mid_step_profile.txt").write_text(table)
    print(table[:6000], flush=True)

    big = synthetic(args.batch * 2, 1)
    result["batch128_full_level"] = summary(time_level(stage, transformer, trainables, optimizer, big, 2,
                                                       args.steps, 2, device), 2)
    print("batch x2", result["batch128_full_level"], flush=True)
    del big
    args.out.write_text(json.dumps(result, indent=1))  # kept if compiling below fails or runs out of time
    if not args.no_compile:
        started = time.perf_counter()
        transformer.compile_repeated_blocks(fullgraph=True, dynamic=False)
        result["compiled"] = {}
        for lvl in range(3):
            times = time_level(stage, transformer, trainables, optimizer, batch, lvl, args.steps, 2, device)
            result["compiled"][lvl] = summary(times, 2)
            print("compiled", lvl, result["compiled"][lvl], flush=True)
        result["compile_total_seconds"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

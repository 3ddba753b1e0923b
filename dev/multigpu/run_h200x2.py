"""The one nvidia-h200-x2 session for issue 9: context-parallel speed-up and equality, and data-parallel throughput.

    PYTHONUNBUFFERED=1 python3 dev/multigpu/run_h200x2.py            # on the 2-GPU box ($OUT set by the device tool)
    python dev/multigpu/run_h200x2.py --tiny                          # CPU dry run of the same sequence (gloo)

Two ranks started by `helios_core.distributed.launch.launch_workers` (the same launcher `--gpus N` uses), each with
the full-size 14B Helios transformer and Wan VAE with random weights built identically on its GPU
(`build_bench_models`, same seed), random prompt embeddings, distilled preset, steps [1,1,1], 384x640.
Engine-level (StreamingGenerator.stream, frames to host; no mp4 writing, no text encoder), in this order:
1. data parallel: 1 GPU makes N_BATCH one-chunk videos (rank 1 idle), then 2 GPUs make them (item i -> rank i % 2);
2. one video of VIDEO_CHUNKS chunks on 1 GPU (rank 0), latents and frames kept;
3. diffusers' Ulysses context parallelism enabled on both ranks; a one-chunk warm-up, then the same video on 2 GPUs;
   rank 0 compares latents and frames with step 2.
Results are written to $OUT/multigpu.json by rank 0 as each step ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

N_BATCH = 8
VIDEO_CHUNKS = 4


def worker(args: dict) -> int:
    import numpy as np
    import torch
    import torch.distributed as dist

    from helios_core.bench.speed import bench_config
    from helios_core.bench.speed_models import build_bench_models
    from helios_core.bench.speed_runners import BENCH_PROMPT, SCHEDULER_FOR_SAMPLER, text_embeddings
    from helios_core.distributed.context_parallel import enable_context_parallel, needs_uneven_split, sequence_lengths
    from helios_core.distributed.sharding import items_for_rank
    from helios_core.distributed.world import join_world, leave_world
    from helios_core.model.tiny import scheduler_config_for
    from helios_core.model.vae import LatentCodec
    from helios_core.pipeline import StreamingGenerator
    from helios_core.request import GenerationRequest

    tiny = args["tiny"]
    world = join_world(cuda=not tiny)
    out = Path(args["out"])
    results: dict = {"device": torch.cuda.get_device_name(0) if not tiny else "cpu", "world_size": world.world_size}

    def save() -> None:
        if world.is_main:
            (out / "multigpu.json").write_text(json.dumps(results, indent=1))

    def sync() -> None:
        if world.device.type == "cuda":
            torch.cuda.synchronize(world.device)
        dist.barrier()

    height, width = (64, 128) if tiny else (384, 640)
    build_started = time.perf_counter()
    models = build_bench_models(full_size=not tiny, device=world.device, seed=0)
    results["build_s"] = time.perf_counter() - build_started
    results["models"] = models.describe()

    def config_for(chunks: int):
        return bench_config("distilled", [1, 1, 1], height, width, 33 * chunks)

    generator = StreamingGenerator(models.transformer, LatentCodec(models.vae),
                                   scheduler_config_for(SCHEDULER_FOR_SAMPLER["pyramid_dmd"]), None, world.device)

    def make_video(chunks: int, seed: int) -> tuple[float, list, np.ndarray]:
        config = config_for(chunks)
        embeds = text_embeddings(models, config, seed)
        request = GenerationRequest(config=config, seed=seed, prompt=BENCH_PROMPT)
        started = time.perf_counter()
        latents, frames = [], []
        with torch.inference_mode():
            for chunk in generator.stream(request, text_embeds=embeds):
                latents.append(chunk.latents)
                frames.append(chunk.pixel_frames)
        return time.perf_counter() - started, latents, np.concatenate(frames)

    # Warm-up on both ranks (kernels, allocator, cuDNN autotune for the VAE).
    make_video(1, 99)
    sync()

    # 1. data parallel throughput
    sync()
    started = time.perf_counter()
    if world.is_main:
        for item in range(N_BATCH):
            make_video(1, 1000 + item)
    sync()
    one_gpu_s = time.perf_counter() - started
    started = time.perf_counter()
    mine = items_for_rank(list(range(N_BATCH)), world.rank, world.world_size)
    for item in mine:
        make_video(1, 1000 + item)
    sync()
    two_gpu_s = time.perf_counter() - started
    results["data_parallel"] = {
        "items": N_BATCH, "frames_per_item": 33, "one_gpu_s": one_gpu_s, "two_gpu_s": two_gpu_s,
        "one_gpu_videos_per_min": 60 * N_BATCH / one_gpu_s, "two_gpu_videos_per_min": 60 * N_BATCH / two_gpu_s,
        "speedup": one_gpu_s / two_gpu_s,
    }
    save()

    # 2. one video on one GPU
    reference = None
    if world.is_main:
        seconds, latents, frames = make_video(VIDEO_CHUNKS, 7)
        reference = (latents, frames)
        results["one_gpu_video"] = {"chunks": VIDEO_CHUNKS, "frames": len(frames), "seconds": seconds,
                                    "fps": len(frames) / seconds}
        save()
    sync()

    # 3. the same video, Ulysses over both GPUs
    video = config_for(VIDEO_CHUNKS).video
    lengths = sequence_lengths(config_for(VIDEO_CHUNKS), video.height // 8, video.width // 8, (1, 2, 2))
    uneven = needs_uneven_split(int(models.transformer.config.num_attention_heads), lengths, world.world_size)
    enable_context_parallel(models.transformer, world.world_size, uneven=uneven)
    make_video(1, 99)  # warm-up: NCCL all-to-all communicators
    sync()
    seconds, latents, frames = make_video(VIDEO_CHUNKS, 7)
    sync()
    if world.is_main:
        ref_latents, ref_frames = reference
        latent_diff = max(float((a - b).abs().max()) for a, b in zip(ref_latents, latents, strict=True))
        latent_scale = max(float(a.abs().max()) for a in ref_latents)
        pixel_diff = np.abs(ref_frames.astype(np.int16) - frames.astype(np.int16))
        results["context_parallel_video"] = {
            "chunks": VIDEO_CHUNKS, "frames": len(frames), "seconds": seconds, "fps": len(frames) / seconds,
            "speedup_vs_one_gpu": results["one_gpu_video"]["seconds"] / seconds, "ulysses_anything": uneven,
            "token_counts": list(lengths),
            "max_abs_latent_diff": latent_diff, "max_abs_latent": latent_scale,
            "max_abs_pixel_diff": int(pixel_diff.max()), "mean_abs_pixel_diff": float(pixel_diff.mean()),
            "per_chunk_max_abs_latent_diff": [float((a - b).abs().max()) for a, b in zip(ref_latents, latents)],
        }
        save()
        print(json.dumps(results, indent=1), flush=True)
    leave_world()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    out = Path(os.environ.get("OUT", "/tmp/helios-multigpu-out"))
    out.mkdir(parents=True, exist_ok=True)
    from helios_core.distributed.launch import launch_workers

    codes = launch_workers(worker, {"tiny": args.tiny, "out": str(out)}, 2)
    print("exit codes", codes, flush=True)
    sys.exit(max(codes))


if __name__ == "__main__":
    main()

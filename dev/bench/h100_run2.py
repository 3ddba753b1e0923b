"""Second H100 session: overlapped decode (side stream) and the bf16 VAE, against diffusers in one process.

    PYTHONUNBUFFERED=1 python3 dev/bench/h100_run2.py       # on the GPU box ($OUT set by the device tool)

1. distilled [1,1,1] eager, ours (decode overlapped, fp32 VAE) vs diffusers, 165 frames, 2 repeats each;
2. the same with regional compile on both sides;
3. ours only, compiled, VAE in bf16; plus the bf16-vs-fp32 pixel difference of one decoded chunk.
Each result is appended to $OUT/h100_run2.jsonl as soon as it exists.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from helios_core.bench.speed import run_speed_bench  # noqa: E402
from helios_core.bench.speed_models import build_bench_models  # noqa: E402
from helios_core.bench.speed_report import format_table  # noqa: E402
from helios_core.model.vae import LatentCodec, to_uint8_video  # noqa: E402


def main() -> None:
    started = time.perf_counter()
    out = Path(os.environ.get("OUT", "/tmp/helios-bench-out"))
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "h100_run2.jsonl"
    models = build_bench_models(full_size=True, device="cuda")

    def record(name: str, result: dict) -> None:
        result["step"] = name
        with jsonl.open("a") as handle:
            handle.write(json.dumps(result) + "\n")
        print(format_table(result) if "ours" in result else result, flush=True)
        print(f"[{name}] total {time.perf_counter() - started:.0f} s", flush=True)

    common = dict(preset="distilled", steps=[1, 1, 1], full_size=True, device="cuda", models=models, height=384,
                  width=640, num_frames=165)
    record("eager_111_overlap", run_speed_bench(**common, repeats=2))
    record("compile_111_overlap", run_speed_bench(**common, repeats=2, compile=True))

    latents = torch.randn(1, 16, 9, 48, 80, device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    with torch.inference_mode():
        fp32 = to_uint8_video(LatentCodec(models.vae).decode(latents)).cpu().to(torch.int16)
        models.vae.to(torch.bfloat16)
        bf16 = to_uint8_video(LatentCodec(models.vae).decode(latents)).cpu().to(torch.int16)
    difference = (fp32 - bf16).abs().float()
    record("vae_bf16_pixel_difference", {"mean_abs_levels": round(difference.mean().item(), 4),
                                         "max_abs_levels": int(difference.max().item()),
                                         "note": "random latents through the random-weight Wan VAE, 33 frames"})
    record("compile_111_overlap_vae_bf16", run_speed_bench(**common, repeats=2, compile=True, with_diffusers=False))


if __name__ == "__main__":
    main()

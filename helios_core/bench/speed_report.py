"""Turn timed videos into the speed bench's JSON numbers, and render them as a short text table.

Definitions (every FPS counts generated pixel frames):
- chunk FPS = 33 / chunk seconds (device timeline, see `speed_timing`); steady FPS = 33 / mean chunk seconds
  over chunks 1..n-1 (chunk 0 alone when there is one chunk);
- end-to-end FPS = frames returned / host wall seconds of the whole call;
- achieved TFLOP/s = transformer FLOPs / transformer seconds over the steady chunks (`transformer_tflops`), and the
  same FLOPs over whole chunk seconds (`chunk_tflops`: what the chip delivers once VAE and the rest are counted);
  utilisation = transformer TFLOP/s / 989 (H100 dense bf16).
Means are over the timed repeats; peaks are their maximum.
"""

from __future__ import annotations

from statistics import mean
from typing import Any

from helios_core.bench.speed_flops import H100_DENSE_BF16_TFLOPS
from helios_core.bench.speed_runners import TimedVideo

GIB = 2**30


def _steady(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return chunks[1:] if len(chunks) > 1 else chunks


def _mean_lists(lists: list[list[float]]) -> list[float]:
    return [mean(values) for values in zip(*lists, strict=True)]


def breakdown(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean seconds per steady chunk by component, and the transformer's achieved rate."""
    steady = _steady(chunks)
    flops_by_stage = _mean_lists([c["transformer_flops_by_stage"] for c in steady])
    seconds_by_stage = _mean_lists([c["transformer_s_by_stage"] for c in steady])
    transformer_s, chunk_s = mean(c["transformer_s"] for c in steady), mean(c["chunk_s"] for c in steady)
    flops = sum(flops_by_stage)
    transformer_tflops = flops / transformer_s / 1e12 if transformer_s > 0 else None
    return {
        "chunk_s": chunk_s,
        "transformer_s_by_stage": seconds_by_stage,
        "transformer_s": transformer_s,
        "vae_s": mean(c["vae_s"] for c in steady),
        "rest_s": mean(c["rest_s"] for c in steady),
        "forwards_by_stage": steady[0]["forwards_by_stage"],
        "transformer_pflop_per_chunk": flops / 1e15,
        "transformer_tflops_by_stage": [f / s / 1e12 if s > 0 else None
                                        for f, s in zip(flops_by_stage, seconds_by_stage, strict=True)],
        "transformer_tflops": transformer_tflops,
        "chunk_tflops": flops / chunk_s / 1e12 if chunk_s > 0 else None,
        "utilisation": transformer_tflops / H100_DENSE_BF16_TFLOPS if transformer_tflops else None,
    }


def summarise_video(video: TimedVideo, chunk_frames: int) -> dict[str, Any]:
    chunk_s = [c["chunk_s"] for c in video.chunks]
    steady_s = mean(c["chunk_s"] for c in _steady(video.chunks))
    return {
        "frames": video.frames,
        "chunks": len(video.chunks),
        "e2e_s": video.e2e_s,
        "e2e_fps": video.frames / video.e2e_s,
        "first_chunk_s": chunk_s[0],
        "first_chunk_wall_s": video.first_chunk_wall_s,
        "steady_fps": chunk_frames / steady_s,
        "chunk_fps": [chunk_frames / s for s in chunk_s],
        "peak_allocated_gib": video.peak_allocated_bytes / GIB if video.peak_allocated_bytes is not None else None,
        "peak_reserved_gib": video.peak_reserved_bytes / GIB if video.peak_reserved_bytes is not None else None,
        "breakdown": breakdown(video.chunks),
        "per_chunk": video.chunks,
        **video.extra,
    }


def summarise_side(videos: list[TimedVideo], warmup_s: float, chunk_frames: int) -> dict[str, Any]:
    runs = [summarise_video(v, chunk_frames) for v in videos]
    peaks = [r["peak_allocated_gib"] for r in runs if r["peak_allocated_gib"] is not None]
    reserved = [r["peak_reserved_gib"] for r in runs if r["peak_reserved_gib"] is not None]
    return {
        "warmup_s": warmup_s,
        "e2e_fps": mean(r["e2e_fps"] for r in runs),
        "e2e_s": mean(r["e2e_s"] for r in runs),
        "steady_fps": mean(r["steady_fps"] for r in runs),
        "first_chunk_s": mean(r["first_chunk_s"] for r in runs),
        "frames": runs[0]["frames"],
        "peak_allocated_gib": max(peaks) if peaks else None,
        "peak_reserved_gib": max(reserved) if reserved else None,
        "breakdown": runs[-1]["breakdown"],
        "runs": runs,
    }


def rounded(value: Any, digits: int = 5) -> Any:
    """Floats to `digits` significant digits, recursively (the JSON stays readable)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def format_table(result: dict[str, Any]) -> str:
    """A few lines per side: FPS, first chunk, peak memory, steady-chunk breakdown."""
    video = result["video"]
    lines = [f"helios bench speed: {result['preset']} {result['sampler']['steps']} {video['height']}x{video['width']} "
             f"{video['num_frames']} frames, compile={result['compile']}, device={result['environment']['device']}",
             f"{'side':<10}{'e2e FPS':>9}{'steady':>9}{'1st chunk':>11}{'peak GiB':>10}  "
             f"steady chunk s = transformer by stage + VAE + rest; TFLOP/s (util)"]
    for side in ("ours", "diffusers"):
        data = result.get(side)
        if not data:
            continue
        if "error" in data:
            lines.append(f"{side:<10}failed: {data['error']}")
            continue
        b = data["breakdown"]
        stages = "/".join(f"{s:.3f}" for s in b["transformer_s_by_stage"])
        peak = f"{data['peak_allocated_gib']:.2f}" if data["peak_allocated_gib"] is not None else "-"
        rate = f"{b['transformer_tflops']:.0f} ({b['utilisation']:.0%})" if b["transformer_tflops"] else "-"
        lines.append(f"{side:<10}{data['e2e_fps']:>9.2f}{data['steady_fps']:>9.2f}{data['first_chunk_s']:>10.2f}s"
                     f"{peak:>10}  {b['chunk_s']:.3f} = {stages} + {b['vae_s']:.3f} + {b['rest_s']:.3f}; {rate}")
    ratio = result.get("ratio_ours_over_diffusers")
    if ratio:
        lines.append(f"ours / diffusers: e2e {ratio['e2e_fps']:.3f}x, steady {ratio['steady_fps']:.3f}x")
    return "\n".join(lines)

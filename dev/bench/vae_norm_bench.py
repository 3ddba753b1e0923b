"""GPU check of the fused RMS norm + SiLU (helios_core.kernels.vae_norm) in the whole-chunk Wan VAE decode (bf16).

    python3 dev/bench/vae_norm_bench.py              # from the repo root, on the GPU box; about 30-60 s on an H100
    python3 dev/bench/vae_norm_bench.py --tests      # first runs the two test files on CUDA (adds ~30-60 s)

Builds the real-size Wan 2.1 VAE as helios_core/bench/speed_models.py does (`AutoencoderKLWan()` defaults, random
weights, seed 0) in bf16 on CUDA and decodes one 9-latent chunk at 384x640 (latents (1, 16, 9, 48, 80) -> 33
frames) with decode_chunk_whole(fused_norm=False) (the PyTorch reference) and (fused_norm=True), and reports:
- the pixel difference in uint8 levels (helios_core.model.vae.to_uint8_video), max and mean;
- the median decode time of 5 runs after 2 warm-ups each (host clock around torch.cuda.synchronize());
- peak allocated GPU memory of each variant's timed runs;
- one norm alone at the largest activation (1, 96, 33, 384, 640): reference vs kernel, ms and the kernel's GB/s;
- a torch.profiler table, top 15 ops and kernels by self CUDA time, for one fused decode.
The last line of stdout is one JSON object with all of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from diffusers import AutoencoderKLWan  # noqa: E402
from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm  # noqa: E402

from helios_core.model.vae import to_uint8_video  # noqa: E402
from helios_core.model.vae_fast import decode_chunk_whole  # noqa: E402
from helios_core.model.vae_fast_ops import rms_norm_into  # noqa: E402

LATENT_SHAPE = (1, 16, 9, 48, 80)  # one Helios chunk at 384x640
LARGEST = (1, 96, 33, 384, 640)  # the decoder's last-stage activation: what each of its norms reads
GIB = 2**30
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def run_tests() -> dict:
    files = ["tests/kernels/test_vae_norm_kernel.py", "tests/model/test_vae_fast_fused_norm.py"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *files], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    print(proc.stdout[-3000:], proc.stderr[-1500:], sep="\n", file=sys.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return {"returncode": proc.returncode, "summary": lines[-1] if lines else ""}


def timed_decodes(vae: AutoencoderKLWan, latents: torch.Tensor, fused: bool) -> tuple[torch.Tensor, list[float], int]:
    """(last output, the 5 timed run times in s, peak allocated bytes over those runs)."""
    for _ in range(2):
        out = decode_chunk_whole(vae, latents, fused_norm=fused)
    del out
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(5):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = decode_chunk_whole(vae, latents, fused_norm=fused)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return out, times, torch.cuda.max_memory_allocated()


def cuda_ms(fn, runs: int = 5) -> float:
    """Median ms of `runs` calls after 2 warm-ups, CUDA events."""
    for _ in range(2):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(runs)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)


def norm_alone() -> dict:
    """One norm + SiLU at the largest activation into a 2-frame-padded buffer, as _activated_padded runs it."""
    from helios_core.kernels.vae_norm import rms_norm_silu_into

    channels = LARGEST[1]
    norm = WanRMS_norm(channels, images=False).to("cuda", torch.bfloat16)
    x = torch.randn(LARGEST, device="cuda", dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last_3d)
    padded_shape = (LARGEST[0], channels, LARGEST[2] + 2, *LARGEST[3:])
    padded = torch.empty(padded_shape, device="cuda", dtype=torch.bfloat16, memory_format=torch.channels_last_3d)
    out = padded[:, :, 2:]
    gain = norm.gamma.float().reshape(-1) * norm.scale

    def reference() -> None:
        rms_norm_into(x, norm, out)
        F.silu(out, inplace=True)

    reference_ms = cuda_ms(reference)
    expected = out.clone()
    fused_ms = cuda_ms(lambda: rms_norm_silu_into(x, gain, norm.bias, out))
    difference = (out.float() - expected.float()).abs().max().item()
    moved = 2 * x.numel() * x.element_size()  # one read, one write
    return {"shape": list(LARGEST), "reference_ms": round(reference_ms, 3), "fused_ms": round(fused_ms, 3),
            "fused_gb_per_s": round(moved / (fused_ms * 1e-3) / 1e9, 1), "max_abs_diff": difference}


def profile_fused(vae: AutoencoderKLWan, latents: torch.Tensor) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        decode_chunk_whole(vae, latents, fused_norm=True)
        torch.cuda.synchronize()
    averages = prof.key_averages()
    # Self time: the kernels themselves, not the aten calls that wrap them (whose totals would repeat the same time).
    sort_key = "self_device_time_total" if hasattr(averages[0], "self_device_time_total") else "self_cuda_time_total"
    print(averages.table(sort_by=sort_key, row_limit=15), flush=True)
    top = sorted(averages, key=lambda e: getattr(e, sort_key), reverse=True)[:15]
    return [{"name": e.key[:80], "cuda_ms": round(getattr(e, sort_key) / 1e3, 3), "calls": e.count} for e in top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", action="store_true", help="run the fused-norm test files on CUDA first")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("vae_norm_bench: needs a CUDA GPU")
    import triton

    result: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__}
    if args.tests:
        log("running the tests on CUDA")
        result["tests"] = run_tests()
    log("building the Wan VAE (default config, random weights, bf16)")
    with torch.random.fork_rng(devices=[0]):
        torch.manual_seed(0)
        with torch.device("cuda"):
            vae = AutoencoderKLWan()
        latents = torch.randn(LATENT_SHAPE, device="cuda")
    vae = vae.to(torch.bfloat16).eval()
    latents = latents.to(torch.bfloat16)
    result["weights_gib"] = round(torch.cuda.memory_allocated() / GIB, 3)
    outputs, timings = {}, {}
    for name, fused in (("reference", False), ("fused", True)):
        log(f"decoding, {name}")
        out, times, peak = timed_decodes(vae, latents, fused)
        outputs[name] = out
        timings[name] = {"median_s": round(statistics.median(times), 4), "runs_s": [round(t, 4) for t in times],
                         "peak_alloc_gib": round(peak / GIB, 3)}
    reference_frames = to_uint8_video(outputs["reference"]).short()
    fused_frames = to_uint8_video(outputs["fused"]).short()
    levels = (fused_frames - reference_frames).abs().float()
    result.update({
        "output_shape": list(outputs["fused"].shape),
        "uint8_max_diff": int(levels.max().item()),
        "uint8_mean_diff": round(levels.mean().item(), 5),
        "uint8_share_differing": round((levels > 0).float().mean().item(), 5),
        "pixel_max_abs_diff": (outputs["fused"].float() - outputs["reference"].float()).abs().max().item(),
        "decode": timings,
        "speedup": round(timings["reference"]["median_s"] / timings["fused"]["median_s"], 3),
        "saved_s": round(timings["reference"]["median_s"] - timings["fused"]["median_s"], 4),
    })
    del outputs, reference_frames, fused_frames, levels
    log("profiling one fused decode")
    result["profile_top15"] = profile_fused(vae, latents)
    del vae, latents
    torch.cuda.empty_cache()
    log("one norm alone at the largest activation")
    result["norm_alone"] = norm_alone()
    result["wall_s"] = round(time.perf_counter() - STARTED, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Time one 33-frame chunk decode (9 latent frames) at 128x256 on the CPU for candidate embedded VAE configs.

Usage: python dev/embedded/bench_vae_decode.py [--threads 2] [--configs NAME,...]
Random weights: timings do not depend on the weights (no data-dependent control flow).
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import AutoencoderKLWan

from helios_core.model.vae_fast import decode_chunk_whole

_PATCH2 = dict(patch_size=2, in_channels=12, out_channels=12, temperal_downsample=[True, True])

CANDIDATES = {
    "b8_m1244_r0": dict(base_dim=8, dim_mult=[1, 2, 4, 4], num_res_blocks=0),
    "b8_m1244_r1": dict(base_dim=8, dim_mult=[1, 2, 4, 4], num_res_blocks=1),
    "b8_m2444_r0": dict(base_dim=8, dim_mult=[2, 4, 4, 4], num_res_blocks=0),
    "b16_m1244_r0": dict(base_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=0),
    "b16_m1244_r1": dict(base_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1),
    "b16_m1248_r0": dict(base_dim=16, dim_mult=[1, 2, 4, 8], num_res_blocks=0),
    "b12_m1244_r1": dict(base_dim=12, dim_mult=[1, 2, 4, 4], num_res_blocks=1),
    # patch_size 2 (Wan 2.2's pixel shuffle): 12 channels at half resolution, two spatial halvings -> still 8x.
    "p2_b16_m124_r0": dict(base_dim=16, dim_mult=[1, 2, 4], num_res_blocks=0, **_PATCH2),
    "p2_b16_m124_r1": dict(base_dim=16, dim_mult=[1, 2, 4], num_res_blocks=1, **_PATCH2),
    "p2_b24_m124_r1": dict(base_dim=24, dim_mult=[1, 2, 4], num_res_blocks=1, **_PATCH2),
    "p2_b32_m124_r1": dict(base_dim=32, dim_mult=[1, 2, 4], num_res_blocks=1, **_PATCH2),
    "p2_b24_d16_m124_r0": dict(base_dim=24, decoder_base_dim=16, dim_mult=[1, 2, 4], num_res_blocks=0, **_PATCH2),
    "p2_b24_d12_m124_r1": dict(base_dim=24, decoder_base_dim=12, dim_mult=[1, 2, 4], num_res_blocks=1, **_PATCH2),
    "p2_b24_d16_m124_r1": dict(base_dim=24, decoder_base_dim=16, dim_mult=[1, 2, 4], num_res_blocks=1, **_PATCH2),
    # Wan 2.2's residual layout (parameter-free space-to-channel shortcuts): the last stage keeps its width.
    "res_p2_b24_d16_m122_r1": dict(base_dim=24, decoder_base_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1,
                                   is_residual=True, **_PATCH2),
    "res_p2_b32_d16_m122_r1": dict(base_dim=32, decoder_base_dim=16, dim_mult=[1, 2, 2], num_res_blocks=1,
                                   is_residual=True, **_PATCH2),
    "res_p2_b32_d24_m122_r1": dict(base_dim=32, decoder_base_dim=24, dim_mult=[1, 2, 2], num_res_blocks=1,
                                   is_residual=True, **_PATCH2),
    "p2_b32_d16_m124_r1": dict(base_dim=32, decoder_base_dim=16, dim_mult=[1, 2, 4], num_res_blocks=1, **_PATCH2),
}


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default=",".join(CANDIDATES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-diffusers", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    latents = torch.randn(1, 16, 9, 16, 32, generator=torch.Generator().manual_seed(0))
    print(f"{'config':16s} {'params':>8s} {'dec_params':>10s} {'diffusers_s':>11s} {'whole_s':>8s} {'whole_fps':>9s}")
    for name in args.configs.split(","):
        torch.manual_seed(0)
        config = {"z_dim": 16, "attn_scales": [], "temperal_downsample": [False, True, True], **CANDIDATES[name]}
        vae = AutoencoderKLWan(**config).eval().eval()
        params = sum(p.numel() for p in vae.parameters())
        dec_params = sum(p.numel() for p in vae.decoder.parameters())
        with torch.inference_mode():
            whole = best_of(lambda: decode_chunk_whole(vae, latents), args.repeats)
            ref = float("nan") if args.skip_diffusers else best_of(lambda: vae.decode(latents), args.repeats)
        print(f"{name:16s} {params/1e6:7.2f}M {dec_params/1e6:9.2f}M {ref:11.2f} {whole:8.2f} {33/whole:9.1f}", flush=True)


if __name__ == "__main__":
    main()

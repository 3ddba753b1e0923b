"""Time one 33-frame chunk decode (9 latent frames, 128x256) of a SAVED VAE folder on this CPU, both decode paths.

Usage: python dev/embedded/measure_cpu_decode.py dev/embedded/vae [--threads 2] [--repeats 3]
The latents are the encoding of a held-out world clip, so the pixels are real; prints best-of-N seconds for
diffusers' frame-by-frame `vae.decode` and for `decode_chunk_whole`, their max difference, and the PSNR of each.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from diffusers import AutoencoderKLWan

from helios_core.embedded.vae_measure import reconstruction_psnr
from helios_core.embedded.world_clips import world_pixels
from helios_core.model.vae_fast import decode_chunk_whole


def best_of(fn, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vae = AutoencoderKLWan.from_pretrained(args.folder, local_files_only=True).float().eval()
    pixels = world_pixels(0, "eval", [0], 33, 128, 256)
    with torch.inference_mode():
        latents = vae.encode(pixels).latent_dist.mean
        reference_s, reference = best_of(lambda: vae.decode(latents).sample, args.repeats)
        whole_s, whole = best_of(lambda: decode_chunk_whole(vae, latents), args.repeats)
    print(f"cpu: {os.cpu_count()} visible cores, torch threads {args.threads}, load {os.getloadavg()[0]:.2f}")
    print(f"latents {tuple(latents.shape)} -> pixels {tuple(reference.shape)}")
    print(f"diffusers vae.decode: {reference_s:.3f} s per 33-frame chunk ({33 / reference_s:.1f} frames/s)")
    print(f"decode_chunk_whole:   {whole_s:.3f} s per 33-frame chunk ({33 / whole_s:.1f} frames/s)")
    print(f"max |whole - diffusers| = {(whole - reference).abs().max().item():.2e}")
    print(f"PSNR of this clip (diffusers decode): {reconstruction_psnr(vae, [pixels]):.2f} dB")


if __name__ == "__main__":
    main()

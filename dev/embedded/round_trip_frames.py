"""One frame of held-out world clips beside the same frame after a model's VAE round trip, as a PNG.

    python dev/embedded/round_trip_frames.py [--model FOLDER] [--prompts 4] [--frame 20] [--out round_trip.png]

Rows are the first held-out prompts of the world bench; left the world's render, right the VAE's encode-decode of
the same 33-frame chunk (as `--vae-ceiling` judges it), both upscaled 2x (nearest) for viewing.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import cv2
import numpy as np

from helios_core.bench.world_quality_prompts import heldout_prompts
from helios_core.bench.world_quality_sources import rendered_source, vae_round_trip_source
from helios_core.presets import load_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the embedded model)")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--frame", type=int, default=20, help="frame of the first chunk, 0..32")
    parser.add_argument("--out", type=Path, default=Path("round_trip.png"))
    args = parser.parse_args()
    config = load_preset("default")
    config = dataclasses.replace(config, video=dataclasses.replace(config.video, seconds=1.4))
    round_trip = vae_round_trip_source(args.model, "cpu")
    rows = []
    for item in heldout_prompts(args.prompts, 0):
        world = next(iter(rendered_source(item, config)))[args.frame]
        decoded = next(iter(round_trip(item, config)))[args.frame]
        rows.append(np.concatenate([world, np.full((world.shape[0], 4, 3), 255, np.uint8), decoded], axis=1))
        print(item.prompt)
    image = cv2.resize(np.concatenate(rows), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(args.out), image[..., ::-1])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

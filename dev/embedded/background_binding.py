"""Does a model put the prompt's background colour on the background, whatever colour its object is?

For every ordered pair of the world's colours (object X, background Y, X != Y) it generates one chunk (33 frames) of
"a large X circle moving left on a Y background" with the `default` preset and takes the per-channel median of all its
pixels, which the background decides (a large circle covers well under half the frame). A pair is a hit when that
median is nearer Y's RGB than any other named colour's. A model that reads its prompt as a bag of words mixes X into
the background (prototype 4: a red circle on blue comes out purple).

    python dev/embedded/background_binding.py NAME=MODEL_FOLDER [NAME=MODEL_FOLDER ...] [--out result.json]

The last line printed is one JSON object: per model, the hit rate and the mean RGB distance of the median to Y.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from helios_core.config import apply_overrides
from helios_core.engine import HeliosEngine
from helios_core.presets import load_preset
from helios_core.request import GenerationRequest
from helios_core.world import COLORS


def nearest_color(rgb: np.ndarray) -> str:
    return min(COLORS, key=lambda name: float(np.linalg.norm(rgb - np.array(COLORS[name], dtype=float))))


def measure(model: Path, seed: int) -> dict:
    config = apply_overrides(load_preset("default"), {"video.num_frames": 33, "video.seconds": None})
    engine = HeliosEngine.load(model, config.runtime)
    hits, distances, started = 0, [], time.perf_counter()
    per_background: dict[str, int] = {}
    for background, background_rgb in COLORS.items():
        for color in COLORS:
            if color == background:
                continue
            prompt = f"a large {color} circle moving left on a {background} background"
            request = GenerationRequest(config=config, seed=seed, prompt=prompt)
            frames = np.concatenate([chunk.pixel_frames for chunk in engine.generate(request)])
            median = np.median(frames.reshape(-1, 3), axis=0)
            hit = nearest_color(median) == background
            hits += hit
            per_background[background] = per_background.get(background, 0) + hit
            distances.append(float(np.linalg.norm(median - np.array(background_rgb, dtype=float))))
    pairs = len(distances)
    return {"hit_rate": hits / pairs, "pairs": pairs, "mean_distance": float(np.mean(distances)),
            "hits_per_background": per_background, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="NAME=MODEL_FOLDER")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = {}
    for item in args.models:
        name, _, folder = item.partition("=")
        results[name] = measure(Path(folder), args.seed)
        print(name, json.dumps(results[name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""The ceiling a VAE puts on the world bench: the world's own clips of the held-out prompts, encoded and decoded
chunk by chunk (33 frames, as the engine decodes), judged like a generated video. For a VAE folder on its own (a
freshly trained one); for a model folder, `helios bench quality --world --vae-ceiling` gives the same row.

    python dev/embedded/vae_ceiling.py VAE_FOLDER [--prompts 5] [--seconds 10] [--device cuda]

No transformer can score above this row: if the judge cannot read colours and shapes in the VAE's round trip, it
cannot read them in anything sampled in that VAE's latent space. Last line: the report's model row as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan

from helios_core.bench.world_quality import WorldModel, WorldQualitySettings, run_world_quality
from helios_core.bench.world_quality_sources import codec_round_trip_source
from helios_core.model.vae import LatentCodec
from helios_core.presets import load_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("vae", type=Path)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("outputs/vae_ceiling"))
    args = parser.parse_args()
    round_trip = codec_round_trip_source(
        lambda: LatentCodec(AutoencoderKLWan.from_pretrained(args.vae).to(args.device).eval()))

    config = load_preset("default")
    config = dataclasses.replace(config, video=dataclasses.replace(config.video, seconds=args.seconds))
    settings = WorldQualitySettings(config=config, models=(WorldModel("vae"),), num_prompts=args.prompts,
                                    out_dir=args.out, write_videos=False, overwrite=True)
    report = run_world_quality(settings, sources={"vae": round_trip}).to_dict(with_videos=False)
    row = report["models"][0]
    print(json.dumps({"vae": str(args.vae), **{k: row[k] for k in row if k not in ("model", "checks")}}))


if __name__ == "__main__":
    main()

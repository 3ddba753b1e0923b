"""vae_round_trip_source: the world's clip through a model's VAE, chunk by chunk, tails padded to 1 + 4k and cut."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from helios_core.bench.world_quality import heldout_prompts, rendered_source
from helios_core.bench.world_quality_sources import vae_round_trip_source
from helios_core.model.vae import LatentCodec, pixels_from_uint8, to_uint8_video
from helios_core.presets import load_preset


def test_round_trip_is_the_codec_on_each_rendered_chunk(tiny_model_dir: Path) -> None:
    config = load_preset("default")
    # 2 s at 24 fps = 48 frames: one 33-frame chunk, then a 15-frame tail (not 1 + 4k: padded to 17, cut to 15).
    config = dataclasses.replace(config, video=dataclasses.replace(config.video, seconds=2.0, height=64, width=128))
    item = heldout_prompts(1, 3)[0]
    chunks = list(vae_round_trip_source(tiny_model_dir, "cpu")(item, config))
    rendered = list(rendered_source(item, config))
    assert [len(c) for c in chunks] == [len(r) for r in rendered] == [33, 15]
    assert all(c.dtype == np.uint8 and c.shape[1:] == (64, 128, 3) for c in chunks)

    codec = LatentCodec(AutoencoderKLWan.from_pretrained(tiny_model_dir / "vae").eval())
    for index, frames in enumerate(rendered):
        padded = np.concatenate([frames, np.repeat(frames[-1:], 2 if index else 0, axis=0)])
        generator = torch.Generator().manual_seed(item.seed * 100_003 + index)
        with torch.no_grad():
            expected = to_uint8_video(codec.decode(codec.encode(pixels_from_uint8(padded), generator))).numpy()
        assert np.array_equal(chunks[index], expected[: len(frames)])

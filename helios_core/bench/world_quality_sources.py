"""Where the world bench's frames come from: a loaded model, the world's renderer, or any frame source.

A `FrameSource` is a callable `(WorldPrompt, GenerationConfig) -> iterable of uint8 RGB chunks (T, H, W, 3)`, one
array per chunk, in order. `rendered_source` is the world's own clip of the prompt's scene (the reference every
generated video is compared with); tests inject it, or synthetic sources, in place of a model.

Everything is driven through the engine contract of `helios_core.runner` (`model_name`, `generate(request)`), so a
model and a frame source are written to MP4 with the same `run_to_file` (sidecar included): `FrameSourceEngine`
adapts a frame source to that contract.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from helios_core.bench.world_quality_prompts import WorldPrompt
from helios_core.config import GenerationConfig
from helios_core.request import ChunkResult, GenerationRequest
from helios_core.world import render_frames

FrameSource = Callable[[WorldPrompt, GenerationConfig], Iterable[np.ndarray]]
# Wan VAE: 4 pixel frames per latent frame after the first (the engine's plan_frames uses the same rule).
TEMPORAL_SCALE = 4


def chunk_pixel_frames(config: GenerationConfig) -> int:
    """Pixel frames per generated chunk (33 for the default 9 latent frames)."""
    return (config.history.latent_frames_per_chunk - 1) * TEMPORAL_SCALE + 1


def rendered_source(item: WorldPrompt, config: GenerationConfig) -> Iterator[np.ndarray]:
    """The world's clip of the prompt's scene at the requested size and length, in the engine's chunk size."""
    total, chunk = config.video.requested_pixel_frames, chunk_pixel_frames(config)
    for start in range(0, total, chunk):
        yield render_frames(item.scene, start, min(chunk, total - start), config.video.height, config.video.width)


class FrameSourceEngine:
    """A frame source behind the engine contract, so `run_to_file` can stream it into an MP4 with its sidecar."""

    def __init__(self, model_name: str, source: FrameSource, prompts: Iterable[WorldPrompt]) -> None:
        self.model_name = model_name
        self.source = source
        self._by_prompt: Mapping[str, WorldPrompt] = {item.prompt: item for item in prompts}  # prompts are unique

    def generate(self, request: GenerationRequest) -> Iterator[ChunkResult]:
        item = self._by_prompt[request.prompt]
        first_frame = 0
        for index, frames in enumerate(self.source(item, request.config)):
            frames = np.asarray(frames)
            # num_chunks is unknown while a source streams; nothing downstream of the bench reads it.
            yield ChunkResult(chunk_index=index, num_chunks=0, pixel_frames=frames, first_frame_index=first_frame,
                              timings={}, latent_stats={})
            first_frame += len(frames)


def check_model(path: Path | None, request: GenerationRequest) -> None:
    """Every check of a model folder and request that needs no weights (one-line errors, before any load)."""
    from helios_core.engine import HeliosEngine  # imports torch: only when a real model is involved

    HeliosEngine.check_request(path, request)


def load_model(path: Path | None, config: GenerationConfig) -> Any:
    """A loaded HeliosEngine (None = the embedded default model)."""
    from helios_core.engine import HeliosEngine

    return HeliosEngine.load(path, config.runtime)


def release_memory() -> None:
    """After the caller dropped its engine: collect it and give its GPU memory back before the next model loads."""
    gc.collect()
    torch = sys.modules.get("torch")  # only a loaded model imports torch; the frame-source path never needs it
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def vae_round_trip_source(model_path: Path | None, device: str = "auto") -> FrameSource:
    """The world's clip of each prompt encoded and decoded by the model's VAE, chunk by chunk as the engine decodes.

    The ceiling the VAE puts on the bench: a transformer's video is decoded by the same VAE, so what the judge
    cannot read in this round trip (a blurred star's points, a small object's colour) it cannot read in any
    generated video either. The VAE loads at the first call (after the bench's up-front checks). A chunk shorter
    than 1 + 4k frames (the video's tail) is padded with its last frame for the VAE and cut back afterwards.
    """
    return codec_round_trip_source(lambda: _load_codec(model_path, device))


def codec_round_trip_source(load_codec: Callable[[], Any]) -> FrameSource:
    """`vae_round_trip_source` for any LatentCodec, made by `load_codec()` at the first call (e.g. a bare VAE folder
    that is not yet part of a model, as dev/embedded/vae_ceiling.py judges one)."""
    loaded: list[Any] = []

    def source(item: WorldPrompt, config: GenerationConfig) -> Iterator[np.ndarray]:
        import torch

        from helios_core.model.vae import pixels_from_uint8, to_uint8_video

        if not loaded:
            loaded.append(load_codec())
        codec = loaded[0]
        for index, frames in enumerate(rendered_source(item, config)):
            length = len(frames)
            padded = -(-(length - 1) // TEMPORAL_SCALE) * TEMPORAL_SCALE + 1
            frames = np.concatenate([frames, np.repeat(frames[-1:], padded - length, axis=0)])
            generator = torch.Generator(codec.device).manual_seed(item.seed * 100_003 + index)
            with torch.no_grad():
                pixels = codec.decode(codec.encode(pixels_from_uint8(frames, codec.device), generator))
            yield to_uint8_video(pixels).cpu().numpy()[:length]

    return source


def _load_codec(model_path: Path | None, device: str) -> Any:
    """The model folder's VAE (fp32) behind the engine's LatentCodec, on `device` (runtime.device)."""
    from helios_core.devices import resolve_device
    from helios_core.engine import default_model_path
    from helios_core.model.folder import load_vae
    from helios_core.model.vae import LatentCodec

    return LatentCodec(load_vae(model_path or default_model_path(), device=resolve_device(device)))

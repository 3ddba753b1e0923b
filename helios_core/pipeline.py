"""The streaming loop: one video as a sequence of 33-frame chunks, each conditioned on the rolling history.

    for each chunk:  noise -> denoise (with history + text) -> latent hook (drift rule, remedy) -> push into
                     history -> start decoding (side stream on a GPU) -> yield the previous chunk's frames

T2V, I2V and V2V run through the same loop; they differ only in what `seed_history` puts in the buffer first.
Nothing here grows with video length: the history buffer is fixed-size and decoded frames are handed to the caller
and forgotten, so a 60-second video peaks at the same memory as a 10-second one.

The random stream is one CPU `torch.Generator` seeded by the request, drawn in the reference pipeline's order (VAE
encode samples, conditioning noise, then per chunk: initial noise, then block noise per pyramid stage), so a seed
gives the same video on CPU and GPU and the same latents as diffusers' pipelines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from helios_core.config import GenerationConfig
from helios_core.history import HistoryBuffer
from helios_core.decode_queue import ChunkDecode
from helios_core.host_copy import host_to_device
from helios_core.model.vae import LatentCodec, pixels_from_uint8
from helios_core.request import GenerationRequest
from helios_core.samplers import ChunkDenoiser
from helios_core.text_schedule import TextTimeline


@dataclass
class DecodedChunk:
    index: int
    num_chunks: int
    latents: torch.Tensor  # (B, C, 9, h, w) float32: what entered the history (after any drift correction)
    pixel_frames: np.ndarray  # (T, H, W, 3) uint8, trimmed to the requested length
    first_frame_index: int
    timings: dict[str, float]
    notes: dict = field(default_factory=dict)  # filled by hooks (drift warnings and actions)


@dataclass
class _Pending:
    index: int
    decode: ChunkDecode
    notes: dict
    denoise_seconds: float


@dataclass(frozen=True)
class FramePlan:
    num_chunks: int
    num_pixel_frames: int  # what the output will hold
    chunk_pixel_frames: int


def plan_frames(config: GenerationConfig, temporal_scale: int = 4) -> FramePlan:
    """How many chunks to generate and how many frames to keep.

    "request" keeps exactly the frames asked for (the last chunk is cut); "reference" keeps what the official code
    does: 33 * chunks frames cut to 4k + 1 (60 s at 24 fps: 1440 asked -> 44 chunks -> 1452 -> 1449 frames).
    """
    chunk = (config.history.latent_frames_per_chunk - 1) * temporal_scale + 1
    requested = config.video.requested_pixel_frames
    num_chunks = max(1, math.ceil(requested / chunk))
    if config.video.trim == "reference":
        kept = (chunk * num_chunks - 1) // temporal_scale * temporal_scale + 1
    else:
        kept = requested
    return FramePlan(num_chunks, kept, chunk)


# The latent hook sees each chunk's latents before they enter the history and returns what the history should keep
# (the drift remedy noises them); the pixel hook sees the decoded frames. Both record what they did in `notes`.
LatentHook = Callable[[int, torch.Tensor, dict], torch.Tensor]
PixelHook = Callable[[int, np.ndarray, dict], None]


class StreamingGenerator:
    def __init__(self, transformer: torch.nn.Module, codec: LatentCodec, scheduler_config: dict,
                 encode_prompt: Callable[[str], torch.Tensor] | None, device: torch.device) -> None:
        self.transformer = transformer
        self.codec = codec
        self.scheduler_config = scheduler_config
        self.encode_prompt = encode_prompt
        self.device = device

    @property
    def model_dtype(self) -> torch.dtype:
        return self.transformer.dtype

    def stream(self, request: GenerationRequest, *, latent_hook: LatentHook | None = None,
               pixel_hook: PixelHook | None = None, text_embeds: dict[str, torch.Tensor] | None = None,
               overlap_decode: bool = True) -> Iterator[DecodedChunk]:
        cfg = request.config
        plan = plan_frames(cfg, self.codec.temporal_scale)
        generator = torch.Generator("cpu").manual_seed(request.seed)
        timeline = TextTimeline(request.segments(), cfg, plan.chunk_pixel_frames, self._encoder(text_embeds))
        latent_shape = (1, self.codec.latent_channels, cfg.history.latent_frames_per_chunk,
                        cfg.video.height // self.codec.spatial_scale, cfg.video.width // self.codec.spatial_scale)
        history = HistoryBuffer(cfg.history.sizes, cfg.history.latent_frames_per_chunk,
                                keep_first_frame=cfg.history.keep_first_frame,
                                shape=(1, latent_shape[1], *latent_shape[3:]), device=self.device)
        self.seed_history(history, request, generator)
        denoiser = ChunkDenoiser(cfg.sampler, self.scheduler_config, self.transformer.config.patch_size)
        side_stream = torch.cuda.Stream(self.device) if overlap_decode and self.device.type == "cuda" else None
        pending: _Pending | None = None
        emitted, clock = 0, time.perf_counter()
        for k in range(plan.num_chunks):
            started = time.perf_counter()
            noise = host_to_device(torch.randn(latent_shape, generator=generator), self.device)  # (1, C, 9, h, w)
            latents = denoiser.denoise(noise, self._predictor(history), timeline.conditioning(
                k, self.model_dtype, self.device), generator, is_first_chunk=k == 0)
            notes: dict = {}
            history_latents = latent_hook(k, latents, notes) if latent_hook else latents
            take_anchor = (k == 0 and history.anchor is None) or (cfg.history.skip_first_chunk and k == 1)
            history.push_chunk(history_latents, take_anchor=take_anchor)
            current = _Pending(k, ChunkDecode(self.codec, latents, side_stream), notes,
                               time.perf_counter() - started)
            if pending is not None:  # the previous chunk's frames, decoded while this chunk was denoised
                chunk, clock = self._finish(pending, plan, emitted, clock, pixel_hook)
                emitted += len(chunk.pixel_frames)
                yield chunk
            pending = current
        chunk, clock = self._finish(pending, plan, emitted, clock, pixel_hook)
        yield chunk

    def _finish(self, pending: _Pending, plan: FramePlan, emitted: int, clock: float,
                pixel_hook: PixelHook | None) -> tuple[DecodedChunk, float]:
        frames = pending.decode.frames()[: plan.num_pixel_frames - emitted]
        if pixel_hook:
            pixel_hook(pending.index, frames, pending.notes)
        now = time.perf_counter()
        # "total" is the wall time between successive chunks reaching the caller: with overlap, a chunk's decode
        # runs while the next one is denoised, so this is the real streaming rate, not a sum of parts.
        timings = {"denoise": pending.denoise_seconds, "decode": pending.decode.seconds, "total": now - clock}
        latents = pending.decode.latents.float().cpu()
        return DecodedChunk(pending.index, plan.num_chunks, latents, frames, emitted, timings, pending.notes), now

    def _encoder(self, text_embeds: dict[str, torch.Tensor] | None) -> Callable[[str], torch.Tensor]:
        if text_embeds is not None:
            return lambda prompt: text_embeds[prompt]
        if self.encode_prompt is None:
            raise RuntimeError("this model has no text encoder; pass text embeddings")
        return self.encode_prompt

    def _predictor(self, history: HistoryBuffer) -> Callable[..., torch.Tensor]:
        hist = history.inputs()
        dtype = self.model_dtype
        long, mid, short = (t.to(self.device, dtype) for t in (hist.long, hist.mid, hist.short))

        def predict(latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
            return self.transformer(
                hidden_states=latents.to(dtype), timestep=timestep, encoder_hidden_states=text,
                indices_hidden_states=hist.indices_noisy, indices_latents_history_short=hist.indices_short,
                indices_latents_history_mid=hist.indices_mid, indices_latents_history_long=hist.indices_long,
                latents_history_short=short, latents_history_mid=mid, latents_history_long=long, return_dict=False,
            )[0]

        return predict

    def seed_history(self, history: HistoryBuffer, request: GenerationRequest, generator: torch.Generator) -> None:
        """Put the conditioning image or video into the history, noised as the reference does (sigma ~ U[lo, hi])."""
        cfg = request.config.history
        if request.image is not None:
            image = pixels_from_uint8(request.image[None])  # (1, 3, 1, H, W)
            anchor = self.codec.encode(image, generator)
            repeated = image.repeat(1, 1, self.codec.pixel_frames_for(cfg.latent_frames_per_chunk), 1, 1)
            fake_latest = self.codec.encode(repeated, generator)[:, :, -1:]
            anchor = _noised(anchor, cfg.image_noise_sigma, generator)
            fake_latest = _noised(fake_latest, cfg.video_noise_sigma, generator)
            history.seed_image(anchor, fake_latest)
        elif request.video is not None:
            video = pixels_from_uint8(request.video)  # (1, 3, T, H, W)
            chunk = self.codec.pixel_frames_for(cfg.latent_frames_per_chunk)
            num_chunks = video.shape[2] // chunk
            if num_chunks == 0:
                raise ValueError(f"the input video needs at least {chunk} frames, got {video.shape[2]}")
            # Only as many whole chunks, counted from the end, as can still be in the history.
            num_chunks = min(num_chunks, math.ceil(history.latents.shape[2] / cfg.latent_frames_per_chunk))
            start = video.shape[2] - num_chunks * chunk
            anchor = self.codec.encode(video[:, :, :1], generator)
            pieces = [self.codec.encode(video[:, :, start + i * chunk: start + (i + 1) * chunk], generator)
                      for i in range(num_chunks)]
            anchor = _noised(anchor, cfg.image_noise_sigma, generator)
            lo, hi = cfg.video_noise_sigma
            noised = []
            for piece in pieces:
                sigma = (torch.rand(piece.shape[2], generator=generator) * (hi - lo) + lo).view(1, 1, -1, 1, 1)
                noised.append(sigma * torch.randn(piece.shape, generator=generator) + (1 - sigma) * piece.cpu())
            history.seed_video(anchor, torch.cat(noised, dim=2))


def _noised(latents: torch.Tensor, sigma_range: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    lo, hi = sigma_range
    sigma = torch.rand(1, generator=generator) * (hi - lo) + lo
    return sigma * torch.randn(latents.shape, generator=generator) + (1 - sigma) * latents.cpu()

"""What a caller asks the engine for, and what the engine hands back per chunk.

A `GenerationRequest` is everything one video needs besides the weights: the resolved config, the seed, the prompt
(or a timed prompt schedule) and an optional conditioning image (I2V) or video (V2V). The engine streams back one
`ChunkResult` per 33-frame chunk as soon as it is decoded, so a writer can put it on disk while the next chunk is
being denoised, and a progress display can show per-chunk speed and drift warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from helios_core.config import GenerationConfig
from helios_core.errors import UserInputError


@dataclass(frozen=True)
class PromptSegment:
    """`prompt` holds from `start_second` until the next segment starts."""

    start_second: float
    prompt: str


@dataclass(frozen=True)
class GenerationRequest:
    config: GenerationConfig
    seed: int
    prompt: str = ""
    schedule: tuple[PromptSegment, ...] = ()  # timed prompts; when given, `prompt` is ignored
    image: np.ndarray | None = None  # (H, W, 3) uint8: image to video
    video: np.ndarray | None = None  # (T, H, W, 3) uint8: video to video, continued from its end
    video_fps: float | None = None

    def segments(self) -> tuple[PromptSegment, ...]:
        """The prompt schedule, sorted, starting at 0 s (a plain prompt is a one-segment schedule)."""
        segments = self.schedule or (PromptSegment(0.0, self.prompt),)
        segments = tuple(sorted(segments, key=lambda s: s.start_second))
        if any(not s.prompt.strip() for s in segments):
            raise UserInputError("the prompt is empty: describe the video to generate")
        if segments[0].start_second != 0.0:
            segments = (PromptSegment(0.0, segments[0].prompt), *segments[1:])
        return segments

    @property
    def mode(self) -> str:
        if self.image is not None:
            return "i2v"
        if self.video is not None:
            return "v2v"
        return "t2v"


@dataclass
class ChunkResult:
    """One decoded chunk. `pixel_frames` is already trimmed to the requested length (the last chunk may be short)."""

    chunk_index: int
    num_chunks: int
    pixel_frames: np.ndarray  # (T, H, W, 3) uint8
    first_frame_index: int  # index in the output video of pixel_frames[0]
    timings: dict[str, float]  # seconds: text, denoise, decode, total (wall clock of this chunk)
    latent_stats: dict[str, list[float]]  # per-channel mean and var of the chunk's latents
    drift_warnings: list[Any] = field(default_factory=list)  # helios_core.drift.DriftWarning
    actions: list[str] = field(default_factory=list)  # what the engine did about drift, for the sidecar

    @property
    def fps(self) -> float:
        total = self.timings.get("total", 0.0)
        return len(self.pixel_frames) / total if total > 0 else float("inf")

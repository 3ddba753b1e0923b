"""Which text conditioning each chunk gets: one prompt, or a timed schedule blended across switches.

A schedule segment applies to every chunk that *starts* at or after its start second. At a switch the embeddings are
linearly interpolated over `prompt.interpolation_chunks` chunks, weights 0, 1/(n-1), ..., 1 as in the reference's
interactive mode (so the first chunk of a new segment still shows the old prompt and the change is gradual rather
than a cut). Negative-prompt embeddings are made once; they are only computed when guidance needs them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from helios_core.config import GenerationConfig
from helios_core.request import PromptSegment
from helios_core.samplers import TextConditioning


class TextTimeline:
    def __init__(self, segments: tuple[PromptSegment, ...], config: GenerationConfig, chunk_pixel_frames: int,
                 encode: Callable[[str], torch.Tensor]) -> None:
        self.segments = segments
        self.chunk_seconds = chunk_pixel_frames / config.video.fps
        self.blend_chunks = config.prompt.interpolation_chunks
        self.encode = encode
        self.uncond = encode(config.prompt.negative_prompt) if config.sampler.guidance_scale > 1.0 else None

    def segment_index(self, chunk_index: int) -> int:
        start = chunk_index * self.chunk_seconds
        index = 0
        for i, segment in enumerate(self.segments):
            if segment.start_second <= start + 1e-9:
                index = i
        return index

    def chunks_since_switch(self, chunk_index: int) -> int:
        index = self.segment_index(chunk_index)
        first = chunk_index
        while first > 0 and self.segment_index(first - 1) == index:
            first -= 1
        return chunk_index - first

    def embeds(self, chunk_index: int) -> torch.Tensor:
        index = self.segment_index(chunk_index)
        current = self.encode(self.segments[index].prompt)
        since = self.chunks_since_switch(chunk_index)
        if index == 0 or self.blend_chunks <= 1 or since >= self.blend_chunks:
            return current
        previous = self.encode(self.segments[index - 1].prompt)
        weight = since / (self.blend_chunks - 1)
        return torch.lerp(previous, current, weight)

    def conditioning(self, chunk_index: int, dtype: torch.dtype, device: torch.device) -> TextConditioning:
        cond = self.embeds(chunk_index).to(device, dtype)
        uncond = self.uncond.to(device, dtype) if self.uncond is not None else None
        return TextConditioning(cond, uncond)

"""Decode a chunk on a side CUDA stream while the next chunk is denoised.

The VAE decode of a 33-frame chunk costs about as much as a third of the chunk's transformer work on an H100, and
the copy of its frames to host memory would stall the GPU if done on the main stream. `ChunkDecode` launches the
decode and a non-blocking copy into pinned host memory on a second stream, after the main stream has produced the
latents; the pipeline then starts the next chunk and collects these frames when it next yields. On a CPU (or with
overlap off) it decodes at once: same frames, no concurrency. The frames are bit-identical either way, since the
same kernels run in the same order within the decode; only where they are scheduled changes.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from helios_core.model.vae import LatentCodec, to_uint8_video


class ChunkDecode:
    def __init__(self, codec: LatentCodec, latents: torch.Tensor, stream: torch.cuda.Stream | None) -> None:
        self.latents = latents  # held so the caching allocator cannot reuse it before the side stream is done
        self._started = time.perf_counter()
        if stream is None:
            self._frames = to_uint8_video(codec.decode(latents)).cpu().numpy()
            self._seconds = time.perf_counter() - self._started
            return
        self._frames = None
        stream.wait_stream(torch.cuda.current_stream(latents.device))  # the latents must be finished first
        self._begin, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(stream):
            self._begin.record(stream)
            video = to_uint8_video(codec.decode(latents))  # (T, H, W, 3) uint8 on the GPU
            self._host = torch.empty(video.shape, dtype=torch.uint8, pin_memory=True)
            self._host.copy_(video, non_blocking=True)
            self._end.record(stream)

    def frames(self) -> np.ndarray:
        """(T, H, W, 3) uint8; waits for the side stream if the decode is still running."""
        if self._frames is None:
            self._end.synchronize()
            self._frames = self._host.numpy()
            self._seconds = self._begin.elapsed_time(self._end) / 1000.0
        return self._frames

    @property
    def seconds(self) -> float:
        """Decode time: GPU time on the side stream, or wall time on the CPU (valid after `frames()`)."""
        self.frames()
        return self._seconds

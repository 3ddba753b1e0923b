"""What every stage shares: calling the transformer with the history layout, and per-sample noise and noise levels.

The history layout (which latents go to the long / mid / short patchifiers and their RoPE frame indices) is taken
from the engine's own `HistoryBuffer`, so training and inference cannot disagree on it:
anchor 0, long 1..16, mid 17..18, short 19, noisy 20..28 for sizes [16, 2, 1] with the anchor.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

from helios_core.history import HistoryBuffer
from helios_core.training.config import HistorySettings, TimestepConfig


class HistoryLayout:
    def __init__(self, settings: HistorySettings) -> None:
        buffer = HistoryBuffer(settings.sizes, settings.latent_frames_per_chunk,
                               keep_first_frame=settings.keep_first_frame, shape=(1, 1, 1, 1))
        self.sizes = buffer.sizes  # (long, mid, short); short is one larger without the anchor
        self.keep_first_frame = settings.keep_first_frame
        inputs = buffer.inputs()
        self.indices = (inputs.indices_long, inputs.indices_mid, inputs.indices_short, inputs.indices_noisy)

    @property
    def history_frames(self) -> int:
        return sum(self.sizes)

    def forward(self, model: torch.nn.Module, noisy: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                history: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        """Velocity prediction for `noisy` (B, C, 9, h', w') given history (B, C, H, h, w) and anchor (B, C, 1, h, w)."""
        batch = noisy.shape[0]
        long, mid, short = history.split(self.sizes, dim=2)
        if self.keep_first_frame:
            short = torch.cat([anchor, short], dim=2)
        idx_long, idx_mid, idx_short, idx_noisy = (i.expand(batch, -1).to(noisy.device) for i in self.indices)
        return model(
            hidden_states=noisy, timestep=timestep, encoder_hidden_states=text,
            indices_hidden_states=idx_noisy, indices_latents_history_short=idx_short,
            indices_latents_history_mid=idx_mid, indices_latents_history_long=idx_long,
            latents_history_short=short, latents_history_mid=mid, latents_history_long=long, return_dict=False,
        )[0]


def sample_unit(config: TimestepConfig, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """(B,) values in (0, 1), one from each sample's generator: sigma for flow matching (logit-normal as SD3 / the
    reference, or uniform)."""
    if config.sampling == "logit_normal":
        normal = torch.cat([torch.randn(1, generator=generator) for generator in generators])
        return torch.sigmoid(normal * config.logit_std + config.logit_mean)
    return torch.cat([torch.rand(1, generator=generator) for generator in generators])


def sample_noise(shape: torch.Size, generators: Sequence[torch.Generator], device: torch.device) -> torch.Tensor:
    """(B, ...) standard normal noise, sample b from generators[b]; drawn on the CPU, so the same on any device.

    The samples are drawn side by side in threads (each generator is its own sequential stream, and randn releases
    the GIL), straight into one pinned buffer when a GPU takes them. Drawn one after another, a full-size batch of
    64 took 0.19 s on a 2-core CPU, more than the 0.14 s the whole eager step takes on an H100 at that size."""
    pinned = device.type == "cuda"
    noise = torch.empty(tuple(shape), dtype=torch.float32, pin_memory=pinned)
    draw = lambda b: torch.randn(tuple(shape[1:]), generator=generators[b], out=noise[b])
    if len(generators) > 1 and noise.numel() >= PARALLEL_NOISE_MIN:
        list(_noise_pool().map(draw, range(len(generators))))
    else:
        for b in range(len(generators)):
            draw(b)
    return noise.to(device, non_blocking=pinned)


PARALLEL_NOISE_MIN = 1 << 18  # elements: below this, starting threads costs more than it saves


@functools.lru_cache(maxsize=1)
def _noise_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="helios-noise")


def broadcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1, 1) on `like`'s device and dtype."""
    return values.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))

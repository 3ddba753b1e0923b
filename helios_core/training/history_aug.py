"""Unified history injection (random history layouts) and Frame-Aware Corrupt (Easy Anti-Drifting) on a batch.

Training sees the history as inference will: sometimes empty (T2V), sometimes only the newest windows of a video
(V2V), sometimes only the anchor and one latent (I2V), and, because at inference the history is the model's own
imperfect output, corrupted: per-frame noise, a slight blur, a saturation shift (reference §1(e)).

Rules, per sample, in this order:
- drop (if enabled): with p `t2v_prob` zero the whole history and the anchor; else with p `v2v_prob` zero the
  oldest part in whole chunk windows (the tail that is not a whole window always, plus 0..windows-1 windows, so at
  least the newest window survives); else with p `i2v_prob` keep only the anchor and the newest latent.
- corrupt (if enabled, skipped with p `skip_prob`): each operation with its own probability; all-zero frames
  (padding or dropped) are never touched, and the anchor is never saturated:
    noise       x <- s*eps + (1 - s)*x with s ~ U[0, noise_max_sigma] per frame (the anchor its own draw)
    blur        bilinear antialiased downsample to a factor in [blur_min_scale, 1], then back up
    saturation  per window, x <- m + f*(x - m) with m the per-pixel channel mean, f ~ U[lo, 1) or U(1, hi]
Every draw of sample b comes from its own CPU generator (`step_random`: the trainer seeds it from the step and the
sample's index in the global batch, so the draws do not depend on how the batch is split across processes), or from
the caller's single generator for all samples in turn; either way a run is reproducible and resumable bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helios_core.training.config import CorruptConfig, DropConfig
from helios_core.training.step_random import Random, sample_generators


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0, size: int = 1) -> torch.Tensor:
    return torch.rand(size, generator=generator) * (high - low) + low


def drop_history(history: torch.Tensor, anchor: torch.Tensor, config: DropConfig, chunk: int,
                 random: Random) -> tuple[torch.Tensor, torch.Tensor]:
    """history (B, C, H, h, w), anchor (B, C, 1, h, w) -> the same with the chosen layout per sample (new tensors)."""
    history, anchor = history.clone(), anchor.clone()
    frames = history.shape[2]
    windows, tail = divmod(frames, chunk)
    for b, generator in enumerate(sample_generators(random, history.shape[0])):
        draws = torch.rand(3, generator=generator)  # always three draws: the stream does not depend on the outcome
        if draws[0] < config.t2v_prob:
            history[b] = 0
            anchor[b] = 0
        elif draws[1] < config.v2v_prob:
            dropped_windows = int(torch.randint(0, max(windows, 1), (1,), generator=generator))
            history[b, :, : tail + dropped_windows * chunk] = 0
        elif draws[2] < config.i2v_prob:
            history[b, :, :-1] = 0
    return history, anchor


def _nonzero_frames(frames: torch.Tensor) -> torch.Tensor:
    """(C, T, h, w) -> (T,) bool: frames holding anything (padding and dropped frames are exactly zero)."""
    return frames.abs().amax(dim=(0, 2, 3)) > 0


def _add_noise(frames: torch.Tensor, max_sigma: float, generator: torch.Generator) -> torch.Tensor:
    sigma = _uniform(generator, 0.0, max_sigma, frames.shape[1]).view(1, -1, 1, 1)
    noise = torch.randn(frames.shape, generator=generator)
    return sigma * noise + (1 - sigma) * frames


def _blur(frames: torch.Tensor, min_scale: float, generator: torch.Generator) -> torch.Tensor:
    scale = float(_uniform(generator, min_scale, 1.0))
    height, width = frames.shape[-2:]
    small = (max(1, round(height * scale)), max(1, round(width * scale)))
    per_frame = frames.permute(1, 0, 2, 3)  # (T, C, h, w): interpolate works on 2-D images
    down = F.interpolate(per_frame, size=small, mode="bilinear", antialias=True, align_corners=False)
    up = F.interpolate(down, size=(height, width), mode="bilinear", align_corners=False)
    return up.permute(1, 0, 2, 3)


def _saturate(frames: torch.Tensor, chunk: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    out = frames.clone()
    total = frames.shape[1]
    for end in range(total, 0, -chunk):  # windows counted from the newest frame, as they were generated
        start = max(0, end - chunk)
        if float(_uniform(generator)) < 0.5:
            factor = float(_uniform(generator, low, 1.0))
        else:
            factor = float(_uniform(generator, 1.0, high))
        window = frames[:, start:end]
        mean = window.mean(dim=0, keepdim=True)
        out[:, start:end] = mean + factor * (window - mean)
    return out


def corrupt_history(history: torch.Tensor, anchor: torch.Tensor, config: CorruptConfig, chunk: int,
                    random: Random) -> tuple[torch.Tensor, torch.Tensor]:
    history, anchor = history.clone(), anchor.clone()
    for b, generator in enumerate(sample_generators(random, history.shape[0])):
        draws = torch.rand(4, generator=generator)  # skip, noise, blur, saturation
        if draws[0] < config.skip_prob:
            continue
        keep_h, keep_a = _nonzero_frames(history[b]), _nonzero_frames(anchor[b])
        new_h, new_a = history[b], anchor[b]
        if draws[1] < config.noise_prob:
            new_h = _add_noise(new_h, config.noise_max_sigma, generator)
            new_a = _add_noise(new_a, config.noise_max_sigma, generator)
        if draws[2] < config.blur_prob:
            new_h = _blur(new_h, config.blur_min_scale, generator)
            new_a = _blur(new_a, config.blur_min_scale, generator)
        if draws[3] < config.saturation_prob:
            new_h = _saturate(new_h, chunk, *config.saturation_range, generator)
        history[b] = torch.where(keep_h.view(1, -1, 1, 1), new_h, history[b])
        anchor[b] = torch.where(keep_a.view(1, -1, 1, 1), new_a, anchor[b])
    return history, anchor


def augment_history(history: torch.Tensor, anchor: torch.Tensor, drop: DropConfig, corrupt: CorruptConfig,
                    chunk: int, random: Random) -> tuple[torch.Tensor, torch.Tensor]:
    if drop.enabled:
        history, anchor = drop_history(history, anchor, drop, chunk, random)
    if corrupt.enabled:
        history, anchor = corrupt_history(history, anchor, corrupt, chunk, random)
    return history, anchor


def drop_captions(text: torch.Tensor, negative: torch.Tensor, prob: float, random: Random) -> torch.Tensor:
    """(B, L, D) caption embeddings with each row replaced by `negative` (L, D) with probability `prob`.

    Draws nothing when `prob` is 0, so runs without caption dropout keep their random stream (and their resumes)."""
    if prob <= 0.0:
        return text
    draws = [torch.rand(1, generator=generator) for generator in sample_generators(random, text.shape[0])]
    dropped = torch.cat(draws) < prob
    if not dropped.any():
        return text
    text = text.clone()
    text[dropped] = negative.to(text)
    return text


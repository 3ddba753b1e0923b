"""The compressed memory of what the model already made: a fixed-size rolling buffer of latent frames.

Helios conditions each new chunk on `sizes = (long, mid, short)` = (16, 2, 1) past latent frames plus a first-frame
anchor. The buffer holds exactly `long + mid + short` frames (one more when there is no anchor), so memory does not
grow with video length: after each chunk the newest frames are appended and the oldest dropped.

Everything T2V, I2V and V2V differ in is *what is in the buffer* before the first chunk:
- T2V: zeros, and a zero anchor for chunk 0; chunk 0's first latent frame then becomes the anchor.
- I2V: the image's latent is the anchor, and a "fake" latent (the image repeated to one chunk and encoded, last frame)
  fills the newest short slot.
- V2V: the input video's latents fill the buffer from its end; its first frame's latent is the anchor.
The transformer sees temporal RoPE indices from a fixed window (anchor 0, long 1..16, mid 17..18, short 19, noisy
20..28): positions are relative to the chunk, not absolute time, which is what lets a minute-long video reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class HistoryInputs:
    """What one transformer call gets from the history (latents in the transformer's dtype by the caller)."""

    long: torch.Tensor  # (B, C, long, h, w)
    mid: torch.Tensor  # (B, C, mid, h, w)
    short: torch.Tensor  # (B, C, 1 + short, h, w) with the anchor first, or (B, C, short + 1, h, w) without anchor
    indices_long: torch.Tensor  # (1, long)
    indices_mid: torch.Tensor  # (1, mid)
    indices_short: torch.Tensor  # (1, short + 1)
    indices_noisy: torch.Tensor  # (1, latent_frames_per_chunk)


class HistoryBuffer:
    def __init__(
        self,
        sizes: tuple[int, int, int],
        latent_frames_per_chunk: int,
        *,
        keep_first_frame: bool,
        shape: tuple[int, int, int, int],  # (B, C, h, w)
        device: torch.device | str = "cpu",
    ) -> None:
        long, mid, short = sizes
        # Without an anchor the short term takes one more frame, so the short patchifier still sees two frames.
        # (diffusers sums the sizes *before* this bump and crashes; the buffer length here is the corrected one.)
        self.sizes = (long, mid, short if keep_first_frame else short + 1)
        self.keep_first_frame = keep_first_frame
        self.latent_frames_per_chunk = latent_frames_per_chunk
        batch, channels, height, width = shape
        self.latents = torch.zeros(batch, channels, sum(self.sizes), height, width, device=device)
        self.anchor: torch.Tensor | None = None  # (B, C, 1, h, w)
        self.num_real_frames = 0  # frames in the buffer that came from a video, an image or a generated chunk
        self._indices = self._make_indices()

    def _make_indices(self) -> tuple[torch.Tensor, ...]:
        long, mid, short = self.sizes
        chunk = self.latent_frames_per_chunk
        if self.keep_first_frame:
            window = torch.arange(1 + long + mid + short + chunk)
            anchor, idx_long, idx_mid, idx_1x, idx_noisy = window.split([1, long, mid, short, chunk])
            idx_short = torch.cat([anchor, idx_1x])
        else:
            window = torch.arange(long + mid + short + chunk)
            idx_long, idx_mid, idx_short, idx_noisy = window.split([long, mid, short, chunk])
        return tuple(i.unsqueeze(0) for i in (idx_long, idx_mid, idx_short, idx_noisy))

    # -- seeding ---------------------------------------------------------------------------------------------------
    def seed_image(self, anchor: torch.Tensor, fake_latest: torch.Tensor) -> None:
        """I2V: `anchor` (B, C, 1, h, w) becomes the anchor and `fake_latest` the newest history frame."""
        self.anchor = anchor.to(self.latents)
        self.latents = torch.cat([self.latents[:, :, :-1], fake_latest.to(self.latents)], dim=2)
        self.num_real_frames += 1

    def seed_video(self, anchor: torch.Tensor, video_latents: torch.Tensor) -> None:
        """V2V: the video's latents (B, C, T, h, w), oldest first, fill the buffer from its newest end."""
        self.anchor = anchor.to(self.latents)
        self._append(video_latents)

    # -- per chunk -------------------------------------------------------------------------------------------------
    def inputs(self) -> HistoryInputs:
        long, mid, short = self.latents.split(self.sizes, dim=2)
        if self.keep_first_frame:
            anchor = self.anchor if self.anchor is not None else torch.zeros_like(short[:, :, :1])
            short = torch.cat([anchor, short], dim=2)
        idx_long, idx_mid, idx_short, idx_noisy = self._indices
        return HistoryInputs(long, mid, short, idx_long, idx_mid, idx_short, idx_noisy)

    def push_chunk(self, chunk_latents: torch.Tensor, *, take_anchor: bool) -> None:
        """Append a generated chunk (B, C, 9, h, w); with `take_anchor`, its first frame becomes the anchor."""
        if take_anchor and self.keep_first_frame:
            self.anchor = chunk_latents[:, :, :1].to(self.latents).clone()
        self._append(chunk_latents)

    def _append(self, new_latents: torch.Tensor) -> None:
        keep = self.latents.shape[2]
        self.latents = torch.cat([self.latents, new_latents.to(self.latents)], dim=2)[:, :, -keep:].contiguous()
        self.num_real_frames = min(keep, self.num_real_frames + new_latents.shape[2])

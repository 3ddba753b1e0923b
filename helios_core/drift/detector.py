"""Online drift detector: cheap per-chunk pixel checks plus the paper's latent rule, with de-duplicated warnings.

Per chunk (`observe_chunk`), `sampled_pairs_per_chunk` pairs of consecutive frames (16 of 33 frames by
default, the first and last included) are shrunk to `analysis_width` and summarised (mean brightness,
saturation, Lab colour, sharpness, inside pair differences, first and last frame): measured on a 2-core CPU
box, about 20 ms per chunk of 384x640 frames (most of it the shrinking), 40 ms at 720x1280, 6 ms at 64x96,
i.e. around 1% of a chunk's generation time, off the GPU. Checks:
- brightness / saturation / colour / sharpness: the chunk against the anchor (first observed chunk) and against
  the mean of the `recent_chunks` chunks before it; the larger of the two, relative to its threshold, is the
  severity.
- seam: the difference across the boundary with the previous chunk against the median difference inside the
  two chunks (metrics.temporal.seam_ratio).
- latent: the paper's rule (drift.latent); `latent_drift_flag` tells the engine to apply `add_history_noise`.
De-duplication: a kind warns when its severity first passes 1, then again only when it has grown by
`rewarn_growth` or flipped direction; it is considered over once the severity falls below `clear_fraction`.
The latent flag itself is never de-duplicated: the remedy applies on every flagged chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from helios_core.drift.config import DriftConfig, DriftWarning
from helios_core.drift.latent import LatentDriftRule
from helios_core.metrics.color import brightness, chroma_shift, describe_chroma_shift, lab_means, saturation
from helios_core.metrics.frames import as_rgb_uint8, downscale_frames
from helios_core.metrics.sharpness import sharpness
from helios_core.metrics.temporal import frame_differences, seam_ratio

__all__ = ["DriftConfig", "DriftDetector", "DriftWarning"]


@dataclass(frozen=True)
class ChunkSummary:
    """What the detector keeps of one chunk (a few numbers and two small frames)."""

    chunk_index: int
    brightness: float
    saturation: float
    lab: np.ndarray  # mean L*, a*, b*
    sharpness: float
    inside_differences: np.ndarray
    first_frame: np.ndarray
    last_frame: np.ndarray


def sampled_frame_indices(frame_count: int, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame indices to analyse, positions within them of each pair's first frame).

    `pairs` consecutive pairs (i, i + 1) with i spread evenly from 0 to frame_count - 2, so the first and the
    last frame are always analysed. All frames when that is not fewer.
    """
    if frame_count < 2 or 2 * pairs >= frame_count:
        indices = np.arange(frame_count)
        return indices, np.arange(max(frame_count - 1, 0))
    starts = np.unique(np.linspace(0, frame_count - 2, pairs).round().astype(np.int64))
    indices = np.unique(np.concatenate([starts, starts + 1]))
    return indices, np.searchsorted(indices, starts)


def summarise_chunk(chunk_index: int, pixel_frames: np.ndarray, analysis_width: int, pairs: int) -> ChunkSummary:
    indices, pair_starts = sampled_frame_indices(len(pixel_frames), pairs)
    # Sample before converting, so float input costs a conversion of the analysed frames only.
    small = downscale_frames(as_rgb_uint8(np.asarray(pixel_frames)[indices]), analysis_width)
    all_differences = frame_differences(small)  # includes non-adjacent jumps between sampled pairs
    return ChunkSummary(
        chunk_index=chunk_index,
        brightness=float(brightness(small).mean()),
        saturation=float(saturation(small).mean()),
        lab=lab_means(small).mean(axis=0),
        sharpness=float(sharpness(small).mean()),
        inside_differences=all_differences[pair_starts],
        first_frame=small[0].copy(),
        last_frame=small[-1].copy(),
    )


@dataclass(frozen=True)
class _Deviation:
    value: float  # signed, in the check's unit
    threshold: float
    text: str  # e.g. "saturation up 38%"
    baseline: str  # e.g. "anchor"; empty for checks without one
    severity_override: float | None = None  # for rules whose severity is not |value| / threshold

    @property
    def severity(self) -> float:
        if self.severity_override is not None:
            return self.severity_override
        return abs(self.value) / self.threshold


class DriftDetector:
    """Feed every chunk in order; read `warnings` (all so far) and `latent_drift_flag` (last chunk only)."""

    def __init__(self, config: DriftConfig, fps: float, chunk_pixel_frames: int = 33) -> None:
        if fps <= 0 or chunk_pixel_frames <= 0:
            raise ValueError(f"fps and chunk_pixel_frames must be positive, got {fps} and {chunk_pixel_frames}")
        self.config = config
        self.fps = fps
        self.chunk_pixel_frames = chunk_pixel_frames
        self._warnings: list[DriftWarning] = []
        self._anchor: ChunkSummary | None = None
        self._history: list[ChunkSummary] = []  # the last `recent_chunks` summaries since the anchor, oldest first
        self._previous: ChunkSummary | None = None  # the last observed chunk, for the seam check
        self._ongoing: dict[str, tuple[float, float]] = {}  # kind -> (last warned severity, its sign)
        self._latent_rule = LatentDriftRule(
            config.latent_ema_rho_mean, config.latent_ema_rho_var,
            config.latent_mean_threshold, config.latent_var_threshold,
        )
        self._latent_flag = False

    @property
    def warnings(self) -> list[DriftWarning]:
        return list(self._warnings)

    @property
    def latent_drift_flag(self) -> bool:
        """True when the paper's latent rule fired on the last observed chunk (apply the history noise)."""
        return self._latent_flag

    def reset_anchor(self) -> None:
        """Make the next observed chunk the new pixel anchor (e.g. at an interactive prompt switch, where the
        content is meant to change). The seam check and the latent EMA carry on: a hard cut is still a seam."""
        self._anchor = None
        self._history = []  # self._previous stays: the next boundary's seam check still needs it
        for kind in ("brightness", "saturation", "color", "sharpness"):
            self._ongoing.pop(kind, None)

    def observe_chunk(
        self, chunk_index: int, pixel_frames: np.ndarray | None, latents: torch.Tensor | None = None
    ) -> list[DriftWarning]:
        """Check one chunk (pixel frames (T, H, W, 3) and/or latents (B, C, T, h, w)); return its new warnings."""
        second = chunk_index * self.chunk_pixel_frames / self.fps
        new: list[DriftWarning] = []
        self._latent_flag = False
        if latents is not None:
            new += self._check_latents(chunk_index, second, latents)
        if pixel_frames is not None and len(pixel_frames) > 0:
            new += self._check_pixels(chunk_index, second, pixel_frames)
        self._warnings += new
        return new

    # --- latent rule ---------------------------------------------------------------------------------------

    def _check_latents(self, chunk_index: int, second: float, latents: torch.Tensor) -> list[DriftWarning]:
        config = self.config
        measure = self._latent_rule.observe(latents)
        self._latent_flag = measure.flagged
        # Both distances must pass, so the smaller ratio is the severity: > 1 exactly when the rule fires.
        severity = min(measure.mean_distance / config.latent_mean_threshold,
                       measure.var_distance / config.latent_var_threshold)
        text = (f"latent statistics drift (mean {measure.mean_distance:.2f}, variance {measure.var_distance:.2f} "
                f"from their running average, limits {config.latent_mean_threshold:g}/{config.latent_var_threshold:g})")
        deviation = _Deviation(measure.mean_distance, config.latent_mean_threshold, text, "", severity)
        warning = self._maybe_warn("latent", deviation, chunk_index, second)
        return [warning] if warning else []

    # --- pixel checks --------------------------------------------------------------------------------------

    def _check_pixels(self, chunk_index: int, second: float, pixel_frames: np.ndarray) -> list[DriftWarning]:
        summary = summarise_chunk(
            chunk_index, pixel_frames, self.config.analysis_width, self.config.sampled_pairs_per_chunk
        )
        new: list[DriftWarning] = []
        previous = self._previous
        if previous is not None and previous.chunk_index == chunk_index - 1:
            warning = self._maybe_warn("seam", self._seam(previous, summary), chunk_index, second)
            new += [warning] if warning else []
        if self._anchor is None:
            self._anchor = summary
        else:
            recent = self._history[-self.config.recent_chunks :]
            for kind, measure in (("brightness", self._brightness), ("saturation", self._saturation),
                                  ("color", self._color), ("sharpness", self._sharpness)):
                against_anchor = measure(summary, [self._anchor], "anchor", anchor=True)
                recent_seconds = len(recent) * self.chunk_pixel_frames / self.fps
                against_recent = measure(summary, recent, f"the previous {recent_seconds:.1f} s", anchor=False)
                worst = max(against_anchor, against_recent, key=lambda deviation: deviation.severity)
                warning = self._maybe_warn(kind, worst, chunk_index, second)
                new += [warning] if warning else []
        self._history = (self._history + [summary])[-self.config.recent_chunks :]
        self._previous = summary
        return new

    def _relative(self, name: str, now: float, baseline: float, threshold: float, label: str) -> _Deviation:
        change = (now - baseline) / max(baseline, self.config.relative_floor)
        direction = "up" if change >= 0 else "down"
        return _Deviation(change, threshold, f"{name} {direction} {abs(change) * 100:.0f}%", label)

    def _brightness(self, now: ChunkSummary, base: list[ChunkSummary], label: str, anchor: bool) -> _Deviation:
        threshold = self.config.brightness_anchor_threshold if anchor else self.config.brightness_recent_threshold
        baseline = float(np.mean([summary.brightness for summary in base]))
        return self._relative("brightness", now.brightness, baseline, threshold, label)

    def _saturation(self, now: ChunkSummary, base: list[ChunkSummary], label: str, anchor: bool) -> _Deviation:
        threshold = self.config.saturation_anchor_threshold if anchor else self.config.saturation_recent_threshold
        baseline = float(np.mean([summary.saturation for summary in base]))
        return self._relative("saturation", now.saturation, baseline, threshold, label)

    def _color(self, now: ChunkSummary, base: list[ChunkSummary], label: str, anchor: bool) -> _Deviation:
        threshold = self.config.color_anchor_threshold if anchor else self.config.color_recent_threshold
        baseline = np.mean([summary.lab for summary in base], axis=0)
        shift = chroma_shift(now.lab, baseline)
        toward = describe_chroma_shift(now.lab, baseline)
        return _Deviation(shift, threshold, f"colour cast toward {toward} (Delta-E {shift:.1f})", label)

    def _sharpness(self, now: ChunkSummary, base: list[ChunkSummary], label: str, anchor: bool) -> _Deviation:
        threshold = self.config.sharpness_anchor_threshold if anchor else self.config.sharpness_recent_threshold
        baseline = float(np.mean([summary.sharpness for summary in base]))
        # Laplacian variance of a flat frame is ~0; the tiny floor keeps log2 finite without changing real ratios.
        log_ratio = float(np.log2((now.sharpness + 1e-6) / (baseline + 1e-6)))
        change = 2.0**log_ratio - 1.0
        if log_ratio < 0:
            text = f"sharpness down {abs(change) * 100:.0f}% (blur)"
        else:
            text = f"sharpness up {change * 100:.0f}% (ringing or noise)"
        return _Deviation(log_ratio, threshold, text, label)

    def _seam(self, previous: ChunkSummary, now: ChunkSummary) -> _Deviation:
        if previous.last_frame.shape != now.first_frame.shape:
            return _Deviation(0.0, self.config.seam_threshold, "", "")
        across = float(frame_differences(np.stack([previous.last_frame, now.first_frame]))[0])
        inside = np.concatenate([previous.inside_differences, now.inside_differences])
        ratio = seam_ratio(across, inside, self.config.seam_floor)
        text = f"seam before chunk {now.chunk_index}: frame change {ratio:.1f}x the typical change inside chunks"
        return _Deviation(ratio, self.config.seam_threshold, text, "")

    # --- de-duplication ------------------------------------------------------------------------------------

    def _maybe_warn(self, kind: str, deviation: _Deviation, chunk_index: int, second: float) -> DriftWarning | None:
        severity = deviation.severity
        sign = float(np.sign(deviation.value)) or 1.0
        ongoing = self._ongoing.get(kind)
        if ongoing is not None and severity < self.config.clear_fraction:
            del self._ongoing[kind]
            ongoing = None
        if severity <= 1.0:
            return None
        if ongoing is not None and sign == ongoing[1] and severity < ongoing[0] * self.config.rewarn_growth:
            return None
        self._ongoing[kind] = (severity, sign)
        against = f" vs {deviation.baseline}" if deviation.baseline else ""
        return DriftWarning(
            kind=kind,
            value=float(deviation.value),
            threshold=float(deviation.threshold),
            second=float(second),
            chunk_index=int(chunk_index),
            message=f"{deviation.text}{against} at {second:.1f} s",
        )

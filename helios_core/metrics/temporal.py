"""Time-series metrics: frame differences, flicker, chunk-seam scores and the HeliosBench drift of a series.

Index convention: `frame_differences` returns one value per consecutive pair; value i compares frame i with
frame i + 1. A chunk boundary at frame b (b = k * chunk_pixel_frames) is therefore the pair index b - 1.

Seam score of a boundary = (difference across the boundary + floor) / (median difference inside the two
neighbouring chunks + floor). The floor (a fraction of the 0..1 range, default 2 grey levels) stands for "too
small to see": without it a static scene, whose inside differences are near zero, would turn one level of
quantisation noise at a boundary into a huge ratio. With it a static, seamless video scores about 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helios_core.metrics.frames import as_rgb_uint8

SEAM_FLOOR = 2.0 / 255.0
DRIFT_EDGE_FRACTION = 0.15


def frame_differences(frames: np.ndarray, previous_frame: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute difference of consecutive frames in [0, 1] (all channels averaged).

    Shape (T - 1,), or (T,) when `previous_frame` (the frame just before `frames`) is given, so a stream can be
    processed batch by batch without losing the pair that straddles two batches.
    """
    frames = as_rgb_uint8(frames)
    if previous_frame is not None:
        frames = np.concatenate([as_rgb_uint8(previous_frame)[-1:], frames])
    if len(frames) < 2:
        return np.zeros(0, dtype=np.float64)
    # int16 holds the signed difference of two uint8 values; float64 would cost 4x the memory for nothing.
    differences = np.abs(np.diff(frames.astype(np.int16), axis=0))
    return differences.mean(axis=(1, 2, 3), dtype=np.float64) / 255.0


def remove_slow_trend(series: np.ndarray, window: int) -> np.ndarray:
    """`series` minus its centred moving average over `window` samples (edges padded with the end values)."""
    series = np.asarray(series, dtype=np.float64)
    if len(series) == 0:
        return series
    window = max(1, int(window)) | 1  # odd, so the average is centred on the sample
    half = window // 2
    padded = np.pad(series, half, mode="edge")
    trend = np.convolve(padded, np.ones(window) / window, mode="valid")
    return series - trend


def flicker(brightness_series: np.ndarray, fps: float, trend_seconds: float = 1.0) -> float:
    """Std of the brightness series after removing its trend over `trend_seconds` (brightness units, 0..1).

    Slow lighting changes are trend and cost nothing; frame-to-frame pumping and chunk-periodic jumps remain.
    """
    if len(brightness_series) < 3:
        return 0.0
    residual = remove_slow_trend(brightness_series, int(round(fps * trend_seconds)))
    return float(np.std(residual))


@dataclass(frozen=True)
class SeamScore:
    """The seam score of one chunk boundary: `boundary_frame` is the first frame of the new chunk."""

    boundary_frame: int
    boundary_difference: float
    inside_median: float
    score: float


def seam_ratio(boundary_difference: float, inside_differences: np.ndarray, floor: float = SEAM_FLOOR) -> float:
    """(boundary + floor) / (median of inside + floor); about 1 when the boundary looks like any other frame."""
    inside = np.asarray(inside_differences, dtype=np.float64)
    inside_median = float(np.median(inside)) if inside.size else 0.0
    return (float(boundary_difference) + floor) / (inside_median + floor)


def seam_scores(
    differences: np.ndarray, chunk_pixel_frames: int, floor: float = SEAM_FLOOR
) -> list[SeamScore]:
    """Seam score of every chunk boundary covered by `differences` (pair index convention above).

    Inside pairs are those of the chunk before and the chunk after the boundary, boundary pairs excluded.
    """
    differences = np.asarray(differences, dtype=np.float64)
    frame_count = len(differences) + 1
    scores: list[SeamScore] = []
    for boundary in range(chunk_pixel_frames, frame_count, chunk_pixel_frames):
        before = differences[boundary - chunk_pixel_frames : boundary - 1]
        after = differences[boundary : min(boundary + chunk_pixel_frames - 1, len(differences))]
        inside = np.concatenate([before, after])
        across = float(differences[boundary - 1])
        inside_median = float(np.median(inside)) if inside.size else 0.0
        scores.append(SeamScore(boundary, across, inside_median, seam_ratio(across, inside, floor)))
    return scores


def edge_drift(series: np.ndarray, edge_fraction: float = DRIFT_EDGE_FRACTION) -> float:
    """HeliosBench drift: |mean of the first 15% of samples - mean of the last 15%| (0.0 for an empty series).

    The edge holds round(15% of n) samples, at least one, so very short series still compare first and last.
    """
    series = np.asarray(series, dtype=np.float64)
    if series.size == 0:
        return 0.0
    edge = max(1, int(round(series.size * edge_fraction)))
    return float(abs(series[:edge].mean() - series[-edge:].mean()))

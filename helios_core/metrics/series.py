"""Streaming per-frame metric series for a whole video, fed batch by batch (the offline bench's engine).

`FrameSeriesAccumulator.push(frames)` takes consecutive RGB frames (already downscaled by the caller) and
appends one value per frame to each per-frame series and one value per consecutive pair to each pair series;
the pair that straddles two pushes is kept, so results do not depend on how the stream was batched. Memory is
O(number of frames) floats: only the previous frame is held.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from helios_core.metrics.color import brightness, lab_means, saturation
from helios_core.metrics.frames import as_rgb_uint8, gray_uint8
from helios_core.metrics.motion import MotionTracker
from helios_core.metrics.sharpness import sharpness
from helios_core.metrics.temporal import frame_differences

# Series with one value per frame, and series with one value per consecutive pair (pair i = frames i, i + 1).
FRAME_SERIES = ("brightness", "saturation", "lab_l", "lab_a", "lab_b", "sharpness")
PAIR_SERIES = ("frame_difference", "motion_amount")


@dataclass
class FrameSeriesAccumulator:
    """Collects FRAME_SERIES and PAIR_SERIES plus flow jerks; `pixel_scale` = source width / analysed width."""

    pixel_scale: float = 1.0
    series: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in FRAME_SERIES + PAIR_SERIES})
    _previous_frame: np.ndarray | None = None
    _motion: MotionTracker | None = None

    def __post_init__(self) -> None:
        self._motion = MotionTracker(pixel_scale=self.pixel_scale)
        # The tracker appends to its own list; sharing it keeps one source of truth for the motion series.
        self.series["motion_amount"] = self._motion.amounts

    @property
    def frame_count(self) -> int:
        return len(self.series["brightness"])

    @property
    def jerks(self) -> np.ndarray:
        return np.asarray(self._motion.jerks, dtype=np.float64)

    def push(self, frames: np.ndarray) -> None:
        frames = as_rgb_uint8(frames)
        if len(frames) == 0:
            return
        self.series["brightness"].extend(brightness(frames).tolist())
        self.series["saturation"].extend(saturation(frames).tolist())
        means = lab_means(frames)
        self.series["lab_l"].extend(means[:, 0].tolist())
        self.series["lab_a"].extend(means[:, 1].tolist())
        self.series["lab_b"].extend(means[:, 2].tolist())
        self.series["sharpness"].extend(sharpness(frames).tolist())
        self.series["frame_difference"].extend(frame_differences(frames, self._previous_frame).tolist())
        for gray in gray_uint8(frames):
            self._motion.push(gray)
        self._previous_frame = frames[-1:].copy()

    def arrays(self) -> dict[str, np.ndarray]:
        """Every series as a float64 array (FRAME_SERIES length T, PAIR_SERIES length T - 1)."""
        return {name: np.asarray(values, dtype=np.float64) for name, values in self.series.items()}


def per_second(values: np.ndarray, fps: float, offset_frames: int = 0) -> np.ndarray:
    """Mean of `values` over each whole second (the last, partial second included).

    `offset_frames` is the frame index of values[0] (1 for pair series, whose value i describes the change into
    frame i + 1), so a pair series is binned by the frame it arrives at.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or fps <= 0:
        return np.zeros(0, dtype=np.float64)
    seconds = ((np.arange(values.size) + offset_frames) / fps).astype(np.int64)
    counts = np.bincount(seconds)
    sums = np.bincount(seconds, weights=values)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means[counts > 0]

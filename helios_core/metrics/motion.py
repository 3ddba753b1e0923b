"""Motion amount and motion smoothness from OpenCV Farneback optical flow.

Flow uses the HeliosBench parameters (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5,
poly_sigma 1.2, flags 0) on uint8 luma. Frames are usually analysed downscaled, so every result is multiplied by
`pixel_scale` (source width / analysed width) and reads in pixels per frame of the SOURCE video.

Motion amount of a pair = mean flow magnitude over the frame (px/frame).

Motion smoothness is model-free (HeliosBench uses the AMT interpolation network, which needs weights). Each flow
map is area-averaged onto a coarse grid `SMOOTHNESS_GRID_WIDTH` cells wide (HeliosBench also shrinks flow maps
to 16 px wide), so the grid follows regions, not single pixels. The jerk of a step is the mean over cells of
|grid_t - grid_(t-1)|: how much the motion changed from one pair to the next (px/frame^2). The smoothness of a
video is 1 / (1 + mean jerk / (mean motion amount + `SMOOTHNESS_FLOOR_PX`)), in (0, 1]: 1 for a static shot or
any constant-velocity motion (a pan, a steadily moving object), about 0.5 when the motion changes by as much
as it moves every frame (stutter, chunk-boundary jumps). The floor keeps a near-static video with sub-pixel
flow noise from scoring as jerky.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

FARNEBACK_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}
SMOOTHNESS_GRID_WIDTH = 16
SMOOTHNESS_FLOOR_PX = 0.5


def farneback_flow(previous_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
    """Dense flow (H, W, 2) from `previous_gray` to `next_gray` (uint8, same shape), in analysed pixels."""
    return cv2.calcOpticalFlowFarneback(previous_gray, next_gray, None, **FARNEBACK_PARAMS)


def _coarse_grid(flow: np.ndarray) -> np.ndarray:
    height, width = flow.shape[:2]
    grid_width = min(SMOOTHNESS_GRID_WIDTH, width)
    grid_height = max(1, int(round(height * grid_width / width)))
    return cv2.resize(flow, (grid_width, grid_height), interpolation=cv2.INTER_AREA)


@dataclass
class MotionTracker:
    """Streaming flow statistics: push luma frames one by one; keeps only the previous frame and grid.

    `amounts[i]` is the motion amount of pair (i, i + 1); `jerks[i]` compares pair i + 1 with pair i.
    """

    pixel_scale: float = 1.0
    amounts: list[float] = field(default_factory=list)
    jerks: list[float] = field(default_factory=list)
    _previous_gray: np.ndarray | None = None
    _previous_grid: np.ndarray | None = None

    def push(self, gray: np.ndarray) -> None:
        if self._previous_gray is not None:
            flow = farneback_flow(self._previous_gray, gray) * self.pixel_scale
            self.amounts.append(float(np.linalg.norm(flow, axis=2).mean()))
            grid = _coarse_grid(flow)
            if self._previous_grid is not None:
                self.jerks.append(float(np.linalg.norm(grid - self._previous_grid, axis=2).mean()))
            self._previous_grid = grid
        self._previous_gray = gray


def motion_smoothness(amounts: np.ndarray, jerks: np.ndarray) -> float:
    """1 / (1 + mean jerk / (mean amount + floor)); 1.0 when there are too few pairs to measure a jerk."""
    if len(jerks) == 0:
        return 1.0
    ratio = float(np.mean(jerks)) / (float(np.mean(amounts)) + SMOOTHNESS_FLOOR_PX)
    return 1.0 / (1.0 + ratio)


def motion_series(gray_frames: np.ndarray, pixel_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(amounts (T-1,), jerks (T-2,)) for a (T, H, W) uint8 luma batch; see the module docstring for units."""
    tracker = MotionTracker(pixel_scale=pixel_scale)
    for gray in gray_frames:
        tracker.push(gray)
    return np.asarray(tracker.amounts), np.asarray(tracker.jerks)

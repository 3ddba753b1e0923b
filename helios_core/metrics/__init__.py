"""Pixel-space quality metrics on RGB frames (T, H, W, 3), shared by the online drift detector and the bench.

numpy + OpenCV only, no model weights. See each module for units and definitions:
frames (validation, downscaling), color (brightness, saturation, Lab), sharpness (Laplacian variance at a fixed
width), temporal (frame difference, flicker, seam score, HeliosBench edge drift), motion (Farneback amount and a
model-free smoothness), series (streaming per-frame series for a whole video).
"""

from helios_core.metrics.color import brightness, chroma_shift, describe_chroma_shift, lab_means, saturation
from helios_core.metrics.frames import as_rgb_uint8, downscale_frames, downscaled_size, gray_uint8
from helios_core.metrics.motion import (
    FARNEBACK_PARAMS,
    MotionTracker,
    farneback_flow,
    motion_series,
    motion_smoothness,
)
from helios_core.metrics.series import FRAME_SERIES, PAIR_SERIES, FrameSeriesAccumulator, per_second
from helios_core.metrics.sharpness import SHARPNESS_WIDTH, sharpness
from helios_core.metrics.temporal import (
    SEAM_FLOOR,
    SeamScore,
    edge_drift,
    flicker,
    frame_differences,
    remove_slow_trend,
    seam_ratio,
    seam_scores,
)

__all__ = [
    "FARNEBACK_PARAMS",
    "FRAME_SERIES",
    "PAIR_SERIES",
    "SEAM_FLOOR",
    "SHARPNESS_WIDTH",
    "FrameSeriesAccumulator",
    "MotionTracker",
    "SeamScore",
    "as_rgb_uint8",
    "brightness",
    "chroma_shift",
    "describe_chroma_shift",
    "downscale_frames",
    "downscaled_size",
    "edge_drift",
    "farneback_flow",
    "flicker",
    "frame_differences",
    "gray_uint8",
    "lab_means",
    "motion_series",
    "motion_smoothness",
    "per_second",
    "remove_slow_trend",
    "saturation",
    "seam_ratio",
    "seam_scores",
    "sharpness",
]

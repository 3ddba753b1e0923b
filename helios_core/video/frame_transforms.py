"""Bring input frames to the model's frame rate and size: nearest-frame fps resampling, cover-resize + centre-crop.

Invariants:
- Frames are (T, H, W, C) arrays (resize also takes one (H, W, C) image); dtype is kept.
- `resample_fps` never blends frames (each output frame is a copy of one input frame), so motion stays crisp and
  the clip's duration is kept to within one output frame.
- `resize_center_crop` never distorts the aspect ratio: it scales so the target is covered, then crops the centre.
  Frames already at the target size come back as they are (the same array, no copy): data preparation calls it once
  per decoded frame, and in a profile on a GPU machine these copies were the costliest call of its decode threads.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def nearest_frame_indices(num_source_frames: int, source_fps: float, target_fps: float) -> np.ndarray:
    """Indices of the source frames nearest to each output time i / target_fps, covering the same duration."""
    if source_fps <= 0 or target_fps <= 0:
        raise ValueError(f"fps must be positive, got source {source_fps} and target {target_fps}")
    if num_source_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    # Same duration: floor(T * target / source) output frames (the epsilon absorbs float error), at least one.
    num_output_frames = max(1, math.floor(num_source_frames * target_fps / source_fps + 1e-6))
    source_times = np.arange(num_output_frames) * (source_fps / target_fps)
    return np.minimum(np.floor(source_times + 0.5).astype(np.int64), num_source_frames - 1)


def resample_fps(frames: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a (T, H, W, C) clip from `src_fps` to `dst_fps` by picking the nearest frame in time."""
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, C), got shape {frames.shape}")
    if math.isclose(src_fps, dst_fps, rel_tol=1e-6):
        return frames
    return frames[nearest_frame_indices(frames.shape[0], src_fps, dst_fps)]


def resize_center_crop(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale (T, H, W, C) frames (or one (H, W, C) image) to cover height x width, then crop the centre."""
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    if frames.ndim == 3:
        return resize_center_crop(frames[np.newaxis], height, width)[0]
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, C) or (H, W, C), got shape {frames.shape}")
    source_height, source_width = frames.shape[1:3]
    if (source_height, source_width) == (height, width):
        return frames
    scale = max(height / source_height, width / source_width)
    # max() guards against rounding just below the target, which would leave a row or column to crop from.
    scaled_height = max(height, round(source_height * scale))
    scaled_width = max(width, round(source_width * scale))
    # INTER_AREA averages pixels when shrinking (no aliasing); bicubic is sharper when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    top = (scaled_height - height) // 2
    left = (scaled_width - width) // 2
    output = np.empty((frames.shape[0], height, width, frames.shape[3]), dtype=frames.dtype)
    for index, frame in enumerate(frames):
        if (scaled_height, scaled_width) != (source_height, source_width):
            frame = cv2.resize(frame, (scaled_width, scaled_height), interpolation=interpolation)
        output[index] = frame[top : top + height, left : left + width].reshape(height, width, -1)
    return output

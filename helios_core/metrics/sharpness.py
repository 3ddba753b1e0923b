"""Per-frame sharpness: variance of the Laplacian of luma, normalised for size and contrast.

Two normalisations make the number a property of the picture's detail rather than of its size or exposure:
- Size: the variance of the Laplacian grows when a frame is downscaled (edges get steeper per pixel), so every
  frame is resized to `SHARPNESS_WIDTH` pixels wide first (shrunk with INTER_AREA, enlarged with INTER_LINEAR).
- Contrast: the Laplacian scales with contrast, so a +10% exposure change alone would move the raw variance by
  ~20%. The variance is divided by the variance of luma itself (plus `CONTRAST_FLOOR`, so a flat frame reads as
  ~0 instead of dividing noise by noise): the share of the picture's energy in fine detail.
Blur creeping in shows as a falling value; checks should compare ratios (log2), not differences, because the
level depends strongly on content.
"""

from __future__ import annotations

import cv2
import numpy as np

from helios_core.metrics.frames import as_rgb_uint8, luma

SHARPNESS_WIDTH = 128
CONTRAST_FLOOR = 1e-4  # a luma std of 0.01 (2.5 grey levels): below that a frame has no detail to measure


def sharpness(frames: np.ndarray, width: int = SHARPNESS_WIDTH) -> np.ndarray:
    """Var(3x3 Laplacian of luma) / (var(luma) + floor) at `width` px wide, one value per frame; shape (T,)."""
    frames = as_rgb_uint8(frames)
    source_height, source_width = frames.shape[1:3]
    height = max(3, int(round(source_height * width / source_width)))
    interpolation = cv2.INTER_AREA if width < source_width else cv2.INTER_LINEAR
    gray = luma(frames)
    if (width, height) != (source_width, source_height):
        gray = np.stack([cv2.resize(frame, (width, height), interpolation=interpolation) for frame in gray])
    # cv2 filters one 2-D image per call; the variances are then taken over the whole stack at once.
    laplacians = np.stack([cv2.Laplacian(frame, cv2.CV_32F, ksize=1) for frame in gray])
    laplacian_variance = laplacians.var(axis=(1, 2), dtype=np.float64)
    return laplacian_variance / (gray.var(axis=(1, 2), dtype=np.float64) + CONTRAST_FLOOR)

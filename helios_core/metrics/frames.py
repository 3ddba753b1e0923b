"""Frame-array plumbing shared by every metric: validation, downscaling, luma.

Invariants:
- Metric inputs are RGB frames shaped (T, H, W, 3). uint8 is the native type; float arrays are taken to be in
  [0, 1] and converted once here, so the metric functions never see two scales.
- Downscaling only ever shrinks (INTER_AREA, aspect kept, even sizes not required): metrics are computed on
  small frames for speed, and every metric that depends on resolution says how it compensates.
- OpenCV colour conversions work on 2-D images; a (T, H, W, 3) batch is converted in one call by viewing it as
  one tall (T*H, W, 3) image, which is exact because the conversions are per pixel.
"""

from __future__ import annotations

import cv2
import numpy as np


def as_rgb_uint8(frames: np.ndarray) -> np.ndarray:
    """Return `frames` as a contiguous uint8 (T, H, W, 3) array; a single (H, W, 3) frame becomes T=1."""
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected RGB frames shaped (T, H, W, 3), got {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"expected uint8 frames or floats in [0, 1], got dtype {array.dtype}")
        array = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def downscaled_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """(width, height) shrunk to at most `max_width` wide with the aspect ratio kept; never enlarged."""
    if width <= max_width:
        return width, height
    new_height = max(1, int(round(height * max_width / width)))
    return max_width, new_height


def downscale_frames(frames: np.ndarray, max_width: int) -> np.ndarray:
    """Shrink each frame to at most `max_width` pixels wide (INTER_AREA averages, so means are preserved)."""
    frames = as_rgb_uint8(frames)
    height, width = frames.shape[1:3]
    new_width, new_height = downscaled_size(width, height, max_width)
    if new_width == width:
        return frames
    return np.stack([cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_AREA) for frame in frames])


def _convert_batch(frames: np.ndarray, code: int) -> np.ndarray:
    """Apply one cv2 colour conversion to a whole (T, H, W, 3) batch (see module docstring)."""
    count, height, width = frames.shape[:3]
    converted = cv2.cvtColor(frames.reshape(count * height, width, 3), code)
    return converted.reshape(count, height, width, *converted.shape[2:])


def luma(frames: np.ndarray) -> np.ndarray:
    """Per-pixel luma Y' (BT.601 weights, as cv2's RGB2GRAY) in [0, 1], shaped (T, H, W), float32."""
    frames = as_rgb_uint8(frames)
    return _convert_batch(frames, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


def gray_uint8(frames: np.ndarray) -> np.ndarray:
    """Per-pixel luma as uint8 (T, H, W): the input Farneback flow expects."""
    return _convert_batch(as_rgb_uint8(frames), cv2.COLOR_RGB2GRAY)


def hsv_uint8(frames: np.ndarray) -> np.ndarray:
    """Per-pixel HSV in OpenCV's 8-bit encoding (H in 0..179, S and V in 0..255), uint8 (T, H, W, 3)."""
    return _convert_batch(as_rgb_uint8(frames), cv2.COLOR_RGB2HSV)


def lab_encoded(frames: np.ndarray) -> np.ndarray:
    """Per-pixel Lab in OpenCV's 8-bit encoding (L*255/100, a*+128, b*+128), uint8 (T, H, W, 3).

    The 8-bit conversion is ~4x faster than the float one; its rounding to whole units vanishes in any mean,
    and since the encoding is affine, a mean can be taken first and decoded after (`decode_lab`).
    """
    return _convert_batch(as_rgb_uint8(frames), cv2.COLOR_RGB2Lab)


def decode_lab(encoded: np.ndarray) -> np.ndarray:
    """OpenCV 8-bit Lab values (any shape ending in 3, any dtype) to CIE units: L* 0..100, a*/b* -128..127."""
    decoded = np.asarray(encoded, dtype=np.float64).copy()
    decoded[..., 0] *= 100.0 / 255.0
    decoded[..., 1:] -= 128.0
    return decoded

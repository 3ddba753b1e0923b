"""Per-frame exposure and colour statistics: brightness, saturation, mean CIE Lab, and colour-shift helpers.

Every function takes RGB frames (T, H, W, 3) (uint8, or floats in [0, 1]) and returns one value per frame, so the
same code serves the online detector (one chunk at a time) and the offline bench (a whole video).
Units: brightness and saturation in [0, 1]; Lab in CIE units (L* 0..100, a*/b* about -128..127), so a colour
shift reads as a Delta-E, where about 2.3 is a just-noticeable difference.
"""

from __future__ import annotations

import numpy as np

from helios_core.metrics.frames import decode_lab, gray_uint8, hsv_uint8, lab_encoded


def brightness(frames: np.ndarray) -> np.ndarray:
    """Mean luma Y' (BT.601) of each frame, in [0, 1]; shape (T,)."""
    # Averaging the uint8 luma in float64 is exact enough and skips a float copy of every pixel.
    return gray_uint8(frames).mean(axis=(1, 2), dtype=np.float64) / 255.0


def saturation(frames: np.ndarray) -> np.ndarray:
    """Mean HSV saturation of each frame, in [0, 1]; shape (T,).

    HSV S is unchanged by a uniform exposure change (it is a ratio), so a lighting change alone does not move it,
    while the Helios over-saturation runaway does.
    """
    return hsv_uint8(frames)[..., 1].mean(axis=(1, 2), dtype=np.float64) / 255.0


def lab_means(frames: np.ndarray) -> np.ndarray:
    """Mean L*, a*, b* of each frame; shape (T, 3). A yellow cast shows as a b* rise, a magenta one as a* rise."""
    return decode_lab(lab_encoded(frames).mean(axis=(1, 2), dtype=np.float64))


def chroma_shift(lab_now: np.ndarray, lab_reference: np.ndarray) -> float:
    """Delta-E in the a*b* plane between two mean Lab colours (L* left out: brightness has its own check)."""
    delta = np.asarray(lab_now, dtype=np.float64)[1:3] - np.asarray(lab_reference, dtype=np.float64)[1:3]
    return float(np.hypot(delta[0], delta[1]))


def describe_chroma_shift(lab_now: np.ndarray, lab_reference: np.ndarray) -> str:
    """A word for the dominant direction of a mean-colour shift: 'yellow', 'blue', 'magenta' or 'green'."""
    delta_a = float(lab_now[1] - lab_reference[1])
    delta_b = float(lab_now[2] - lab_reference[2])
    if abs(delta_b) >= abs(delta_a):
        return "yellow" if delta_b > 0 else "blue"
    return "magenta" if delta_a > 0 else "green"

"""Shared fixtures for the video tests: a smooth synthetic clip that H.264 preserves well at tiny sizes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

CHUNK_FRAMES = 33
WIDTH, HEIGHT = 64, 48


def make_smooth_frames(num_frames: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """(T, H, W, 3) uint8 of slowly moving sine waves: low detail, so CRF 18 keeps it within a few levels."""
    t = np.arange(num_frames, dtype=np.float64)[:, None, None]
    y = np.arange(height, dtype=np.float64)[None, :, None]
    x = np.arange(width, dtype=np.float64)[None, None, :]
    shape = (num_frames, height, width)
    red = np.broadcast_to(128 + 80 * np.sin(x / 20 + t / 5), shape)
    green = np.broadcast_to(128 + 80 * np.cos(y / 15 - t / 7), shape)
    blue = np.broadcast_to(128 + 60 * np.sin((x + y) / 25 + t / 11), shape)
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


@pytest.fixture
def smooth_frames() -> Callable[..., np.ndarray]:
    return make_smooth_frames

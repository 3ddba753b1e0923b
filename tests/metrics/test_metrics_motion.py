"""Farneback motion amount, model-free motion smoothness, and the streaming series accumulator."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helios_core.metrics import FrameSeriesAccumulator, gray_uint8, motion_series, motion_smoothness


def periodic_texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture that tiles seamlessly, so np.roll is a true translation."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None] * height
    fx = np.fft.fftfreq(width)[None, :] * width
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((height, width))) * np.exp(-(fy**2 + fx**2) / 200)))
    field = (field - field.mean()) / field.std()
    return np.clip(128 + 50 * field, 0, 255).astype(np.uint8)


def translating(offsets: np.ndarray, height: int = 64, width: int = 96) -> np.ndarray:
    """Gray frames of one texture shifted right by offsets[t] pixels."""
    base = periodic_texture(height, width)
    return np.stack([np.roll(base, int(offset), axis=1) for offset in offsets])


@pytest.mark.parametrize("speed", [1, 3])
def test_motion_amount_of_a_translation_is_its_speed(speed: int) -> None:
    amounts, _ = motion_series(translating(speed * np.arange(12)))
    assert amounts.mean() == pytest.approx(speed, rel=0.1)


def test_motion_amount_is_reported_in_source_pixels_after_downscaling() -> None:
    frames = translating(4 * np.arange(10), height=96, width=192)
    small = np.stack([cv2.resize(frame, (96, 48), interpolation=cv2.INTER_AREA) for frame in frames])
    amounts, _ = motion_series(small, pixel_scale=2.0)  # 2 px/frame measured at half size
    assert amounts.mean() == pytest.approx(4.0, rel=0.1)


def test_smoothness_separates_steady_from_stuttering_motion() -> None:
    steady = motion_smoothness(*motion_series(translating(2 * np.arange(30))))
    stutter_offsets = np.cumsum(np.tile([0, 4], 15))  # same 2 px/frame average, but stop-go
    stuttering = motion_smoothness(*motion_series(translating(stutter_offsets)))
    static = motion_smoothness(*motion_series(translating(np.zeros(30))))
    assert steady > 0.9
    assert static > 0.95
    assert stuttering < 0.7
    assert motion_smoothness(np.array([1.0]), np.array([])) == 1.0


def test_accumulator_results_do_not_depend_on_batching() -> None:
    rng = np.random.default_rng(5)
    base = np.stack([periodic_texture(48, 64, seed) for seed in range(3)], axis=-1)
    frames = np.stack([np.roll(base, t, axis=1) for t in range(20)])
    frames[10:] = np.clip(frames[10:].astype(int) + rng.integers(-3, 4, frames[10:].shape), 0, 255)
    whole = FrameSeriesAccumulator()
    whole.push(frames)
    batched = FrameSeriesAccumulator()
    for start in range(0, 20, 7):
        batched.push(frames[start : start + 7])
    for name, values in whole.arrays().items():
        np.testing.assert_allclose(batched.arrays()[name], values, err_msg=name)
    assert len(whole.arrays()["brightness"]) == 20 and len(whole.arrays()["motion_amount"]) == 19
    assert whole.arrays()["motion_amount"].mean() == pytest.approx(1.0, rel=0.15)
    np.testing.assert_allclose(whole.jerks, batched.jerks)
    assert gray_uint8(frames).shape == (20, 48, 64)

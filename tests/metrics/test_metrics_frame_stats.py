"""Per-frame statistics: brightness, saturation, Lab, sharpness, downscaling (helios_core.metrics)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from helios_core.metrics import (
    as_rgb_uint8,
    brightness,
    chroma_shift,
    describe_chroma_shift,
    downscale_frames,
    lab_means,
    saturation,
    sharpness,
)


def solid(rgb: tuple[int, int, int], count: int = 2, height: int = 16, width: int = 24) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (count, height, width, 3)).copy()


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Grey blocks of random level plus a colour gradient: plenty of edges for the Laplacian."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 215, (height // 8, width // 8))
    gray = np.kron(blocks, np.ones((8, 8)))[:height, :width]
    ramp = np.linspace(-20, 20, width)[None, :]
    frame = np.stack([gray + ramp, gray, gray - ramp], axis=-1)
    return np.clip(frame, 0, 255).astype(np.uint8)[None]


def test_brightness_is_bt601_luma_mean() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (3, 10, 12, 3), dtype=np.uint8)
    expected = (frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).mean(axis=(1, 2)) / 255.0
    np.testing.assert_allclose(brightness(frames), expected, atol=1.5 / 255)  # cv2 rounds luma per pixel


def test_saturation_of_grey_red_and_pastel() -> None:
    assert saturation(solid((90, 90, 90)))[0] == pytest.approx(0.0)
    assert saturation(solid((255, 0, 0)))[0] == pytest.approx(1.0)
    assert saturation(solid((255, 128, 128)))[0] == pytest.approx((255 - 128) / 255, abs=1 / 255)


def test_lab_means_match_cie_reference_values() -> None:
    # sRGB white and yellow in CIE Lab (D65): (100, 0, 0) and (97.14, -21.55, 94.48).
    np.testing.assert_allclose(lab_means(solid((255, 255, 255)))[0], [100.0, 0.0, 0.0], atol=1.0)
    np.testing.assert_allclose(lab_means(solid((255, 255, 0)))[0], [97.14, -21.55, 94.48], atol=1.5)


def test_chroma_shift_and_its_direction() -> None:
    colours = ((128, 128, 128), (140, 135, 100), (110, 140, 110))
    grey, yellowish, greenish = (lab_means(solid(rgb))[0] for rgb in colours)
    assert chroma_shift(grey, grey) == pytest.approx(0.0, abs=1e-9)
    assert chroma_shift(yellowish, grey) > 10
    assert describe_chroma_shift(yellowish, grey) == "yellow"
    assert describe_chroma_shift(grey, yellowish) == "blue"
    assert describe_chroma_shift(greenish, grey) == "green"


def test_sharpness_falls_with_blur_and_ignores_contrast_and_size() -> None:
    sharp = texture(96, 144)
    blurred = cv2.GaussianBlur(sharp[0], (0, 0), 2.0)[None]
    assert sharpness(blurred)[0] < 0.5 * sharpness(sharp)[0]
    dimmer = (sharp.astype(np.float32) * 0.7 + 20).astype(np.uint8)  # lower contrast, same detail
    assert sharpness(dimmer)[0] == pytest.approx(sharpness(sharp)[0], rel=0.05)
    bigger = cv2.resize(sharp[0], (288, 192), interpolation=cv2.INTER_NEAREST)[None]  # same picture, 2x pixels
    assert sharpness(bigger)[0] == pytest.approx(sharpness(sharp)[0], rel=0.15)


def test_downscale_keeps_aspect_and_means_and_never_enlarges() -> None:
    frames = np.concatenate([texture(96, 160, seed) for seed in range(3)])
    small = downscale_frames(frames, 64)
    assert small.shape == (3, 38, 64, 3)  # 96 * 64 / 160 = 38.4
    np.testing.assert_allclose(brightness(small), brightness(frames), atol=0.01)
    assert downscale_frames(frames, 400).shape == frames.shape


def test_float_frames_in_unit_range_are_accepted_and_bad_shapes_refused() -> None:
    as_float = solid((255, 0, 0)).astype(np.float32) / 255.0
    assert as_rgb_uint8(as_float).dtype == np.uint8
    assert saturation(as_float)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="T, H, W, 3"):
        as_rgb_uint8(np.zeros((2, 8, 8), np.uint8))

"""resample_fps / nearest_frame_indices / resize_center_crop: shapes, chosen frames, and crop placement."""

from __future__ import annotations

import numpy as np
import pytest

from helios_core.video import nearest_frame_indices, resample_fps, resize_center_crop


def numbered_frames(num_frames: int, height: int = 4, width: int = 6) -> np.ndarray:
    return np.broadcast_to(np.arange(num_frames, dtype=np.uint8)[:, None, None, None], (num_frames, height, width, 3))


def test_resample_30_to_24_keeps_duration_and_picks_nearest_frames() -> None:
    resampled = resample_fps(numbered_frames(30), 30.0, 24.0)
    assert resampled.shape == (24, 4, 6, 3)
    # Output frame i shows time i/24 s; source frames sit at j/30 s: nearest j = i * 1.25, halves rounded up.
    assert resampled[:9, 0, 0, 0].tolist() == [0, 1, 3, 4, 5, 6, 8, 9, 10]
    assert resampled[-1, 0, 0, 0] == 29


def test_resample_up_repeats_frames_and_same_rate_is_identity() -> None:
    frames = numbered_frames(12)
    upsampled = resample_fps(frames, 12.0, 24.0)
    # Output frame i shows time i/24 s, nearest source frame i/2 (halves rounded up); the last one is clipped.
    assert upsampled[:, 0, 0, 0].tolist() == [*(i // 2 + i % 2 for i in range(23)), 11]
    assert resample_fps(frames, 24.0, 24.0) is frames


def test_nearest_frame_indices_edge_cases() -> None:
    assert nearest_frame_indices(0, 30.0, 24.0).tolist() == []
    assert nearest_frame_indices(1, 30.0, 24.0).tolist() == [0]  # never drops a clip to nothing
    with pytest.raises(ValueError, match="positive"):
        nearest_frame_indices(10, 0.0, 24.0)


def test_resize_center_crop_shapes_and_centre() -> None:
    # A wide 40x120 frame with a bright centre column band; cropping to square 32x32 must keep the centre.
    frames = np.zeros((3, 40, 120, 3), dtype=np.uint8)
    frames[:, :, 50:70] = 255
    cropped = resize_center_crop(frames, 32, 32)
    assert cropped.shape == (3, 32, 32, 3) and cropped.dtype == np.uint8
    assert cropped[:, :, 12:20].min() > 200  # the band (scaled by 0.8 to x=40..56, minus left crop 32) is centred
    assert cropped[:, :, :5].max() < 30 and cropped[:, :, -5:].max() < 30


@pytest.mark.parametrize(
    ("source", "target"), [((48, 64), (384, 640)), ((720, 1280), (384, 640)), ((50, 50), (32, 64))]
)
def test_resize_center_crop_any_aspect(source: tuple[int, int], target: tuple[int, int]) -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, *source, 3), dtype=np.uint8)
    assert resize_center_crop(frames, *target).shape == (2, *target, 3)
    assert resize_center_crop(frames[0], *target).shape == (*target, 3)  # one image works too


def test_frames_already_at_the_target_size_come_back_untouched() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, 16, 32, 3), dtype=np.uint8)
    assert resize_center_crop(frames, 16, 32) is frames
    assert np.array_equal(resize_center_crop(frames[0], 16, 32), frames[0])
    assert resize_center_crop(frames, 16, 24).shape == (2, 16, 24, 3)  # one side differing still crops

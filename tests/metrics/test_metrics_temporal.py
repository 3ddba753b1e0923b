"""Time-series metrics: frame difference, flicker, seam scores, edge drift, per-second binning."""

from __future__ import annotations

import numpy as np
import pytest

from helios_core.metrics import (
    SEAM_FLOOR,
    edge_drift,
    flicker,
    frame_differences,
    per_second,
    remove_slow_trend,
    seam_ratio,
    seam_scores,
)


def test_frame_differences_values_and_batch_continuity() -> None:
    frames = np.zeros((3, 4, 5, 3), np.uint8)
    frames[1] = 51
    frames[2, :2] = 51  # half of frame 2 differs from frame 1
    np.testing.assert_allclose(frame_differences(frames), [0.2, 0.1])
    stream = np.random.default_rng(0).integers(0, 256, (10, 6, 7, 3), dtype=np.uint8)
    whole = frame_differences(stream)
    batched = np.concatenate([frame_differences(stream[:4]), frame_differences(stream[4:], previous_frame=stream[3])])
    np.testing.assert_allclose(batched, whole)


def test_remove_slow_trend_erases_a_ramp_but_not_an_alternation() -> None:
    ramp = np.linspace(0.3, 0.6, 200)
    assert np.abs(remove_slow_trend(ramp, 25)[15:-15]).max() < 1e-9
    alternating = 0.5 + 0.02 * (-1) ** np.arange(200)
    assert np.abs(remove_slow_trend(alternating, 25)[15:-15]).mean() == pytest.approx(0.02, rel=0.1)


def test_flicker_ignores_slow_light_and_measures_pumping() -> None:
    fps = 24.0
    slow = 0.5 + 0.05 * np.sin(2 * np.pi * np.arange(1440) / 1440)
    assert flicker(slow, fps) < 1e-3
    pumping = slow + 0.01 * (-1) ** np.arange(1440)
    assert flicker(pumping, fps) == pytest.approx(0.01, rel=0.1)


def test_seam_scores_find_boundary_spikes_only() -> None:
    rng = np.random.default_rng(3)
    chunk = 33
    differences = 0.02 + 0.002 * rng.standard_normal(4 * chunk - 1)  # 4 chunks, 132 frames, 131 pairs
    differences[2 * chunk - 1] = 0.12  # the pair (65, 66) straddles the boundary at frame 66
    scores = seam_scores(differences, chunk)
    assert [score.boundary_frame for score in scores] == [33, 66, 99]
    expected = (0.12 + SEAM_FLOOR) / (np.median(np.r_[differences[33:65], differences[66:98]]) + SEAM_FLOOR)
    assert scores[1].score == pytest.approx(expected)
    assert scores[1].score > 3
    assert 0.7 < scores[0].score < 1.4 and 0.7 < scores[2].score < 1.4


def test_seam_ratio_of_a_static_video_is_one() -> None:
    assert seam_ratio(0.0, np.zeros(64)) == pytest.approx(1.0)


def test_edge_drift_is_first_vs_last_15_percent() -> None:
    series = np.random.default_rng(4).random(100)
    assert edge_drift(series) == pytest.approx(abs(series[:15].mean() - series[85:].mean()))
    assert edge_drift(np.array([0.2, 0.9])) == pytest.approx(0.7)
    assert edge_drift(np.array([])) == 0.0


def test_per_second_bins_whole_seconds_and_the_partial_tail() -> None:
    values = np.arange(50, dtype=np.float64)  # 24 fps: seconds hold frames 0-23, 24-47, 48-49
    np.testing.assert_allclose(per_second(values, 24.0), [11.5, 35.5, 48.5])
    # A pair series starts at frame 1: its value 23 is the change into frame 24, so second 1 starts there.
    np.testing.assert_allclose(per_second(values[:47], 24.0, offset_frames=1), [11.0, 34.5])  # 0-22, 23-46

"""Offline quality report of real MP4 files (written here with imageio-ffmpeg, H.264 at near-lossless CRF)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from helios_core.bench.quality import TABLE_COLUMNS, QualityReport, format_table, plot_report, score_video
from helios_core.errors import MediaError

FPS, CHUNK = 24, 33


def write_mp4(path: Path, frames: np.ndarray) -> Path:
    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=FPS, quality=None, output_params=["-crf", "10"], macro_block_size=1
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame).tobytes())
    writer.close()
    return path


def periodic_texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colourful RGB texture that tiles seamlessly (np.roll is a true translation)."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None] * height
    fx = np.fft.fftfreq(width)[None, :] * width
    channels = []
    for _ in range(3):
        spectrum = np.fft.fft2(rng.standard_normal((height, width))) * np.exp(-(fy**2 + fx**2) / 200)
        field = np.real(np.fft.ifft2(spectrum))
        channels.append(128 + 50 * (field - field.mean()) / field.std())
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def pan(frame_count: int, speed: int, height: int = 64, width: int = 96) -> np.ndarray:
    base = periodic_texture(height, width)
    return np.stack([np.roll(base, speed * t, axis=1) for t in range(frame_count)])


def moving_square(frame_count: int, height: int = 64, width: int = 96) -> np.ndarray:
    """A textured still background with a 12 px square crossing it at 1 px/frame."""
    frames = np.repeat(periodic_texture(height, width, seed=1)[None], frame_count, axis=0)
    for t in range(frame_count):
        left = (10 + t) % (width - 12)
        frames[t, 26:38, left : left + 12] = (230, 40, 40)
    return frames


def decoded_luma_means(path: Path) -> np.ndarray:
    """Independent reference: full-size decode and a numpy BT.601 luma mean per frame."""
    reader = imageio_ffmpeg.read_frames(str(path))
    width, height = next(reader)["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3).astype(np.float64) for raw in reader]
    return np.array([(frame @ [0.299, 0.587, 0.114]).mean() / 255.0 for frame in frames])


@pytest.mark.parametrize("size, speed", [((64, 96), 2), ((192, 320), 3)])
def test_flow_magnitude_of_a_translation_is_its_speed_in_source_pixels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, size: tuple[int, int], speed: int
) -> None:
    video = write_mp4(tmp_path / "pan.mp4", pan(40, speed, *size))
    with caplog.at_level(logging.DEBUG):
        report = score_video(video)
    assert caplog.records == []  # nothing logged, not even imageio-ffmpeg's notice that we asked for a resize
    assert report.analysed_width == min(size[1], 160)  # the 320 px video is measured at half size
    assert report.motion_amount == pytest.approx(speed, rel=0.12)
    assert report.motion_smoothness > 0.9


def test_seams_every_chunk_score_far_above_one_and_clean_boundaries_near_one(tmp_path: Path) -> None:
    clean = moving_square(5 * CHUNK)
    seamed = clean.copy()
    for chunk in range(1, 5, 2):  # every other chunk is displaced by (3, 4) px: a jump at every boundary
        span = slice(chunk * CHUNK, (chunk + 1) * CHUNK)
        seamed[span] = np.roll(clean[span], (3, 4), (1, 2))
    seamed_report = score_video(write_mp4(tmp_path / "seamed.mp4", seamed))
    clean_report = score_video(write_mp4(tmp_path / "clean.mp4", clean))
    assert [seam["boundary_frame"] for seam in seamed_report.seam_scores] == [33, 66, 99, 132]
    assert all(seam["score"] > 3.0 for seam in seamed_report.seam_scores), seamed_report.seam_scores
    assert all(0.7 < seam["score"] < 1.4 for seam in clean_report.seam_scores), clean_report.seam_scores
    assert seamed_report.seam_median > 3.0 > 1.4 > clean_report.seam_max
    assert seamed_report.motion_smoothness < clean_report.motion_smoothness


def test_brightness_drift_equals_the_first_vs_last_15_percent_of_the_decoded_video(tmp_path: Path) -> None:
    frame_count = 120
    texture = periodic_texture(64, 96).astype(np.float32)
    gains = np.linspace(0.7, 1.1, frame_count)
    video = write_mp4(tmp_path / "ramp.mp4", np.stack([np.clip(texture * g, 0, 255).astype(np.uint8) for g in gains]))
    report = score_video(video)
    luma = decoded_luma_means(video)
    edge = round(0.15 * frame_count)
    expected = abs(luma[:edge].mean() - luma[-edge:].mean())
    assert expected > 0.1
    assert report.drift["brightness"] == pytest.approx(expected, abs=0.004)
    assert report.frame_count == frame_count and len(report.per_second["brightness"]) == 5  # 5 s, last one partial
    assert report.per_second["brightness"][-1] > report.per_second["brightness"][0]


def test_report_serialises_plots_and_tabulates(tmp_path: Path) -> None:
    report = score_video(write_mp4(tmp_path / "clip.mp4", pan(3 * CHUNK, 1)))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["frame_count"] == 3 * CHUNK and data["duration_s"] == pytest.approx(3 * CHUNK / FPS)
    assert set(data["drift"]) >= {"brightness", "saturation", "color", "sharpness", "motion_amount"}
    png = plot_report(report, tmp_path / "clip.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    rows = format_table([report, report])
    assert len(rows) == 2 and list(rows[0]) == [key for key, _ in TABLE_COLUMNS]
    assert rows[0]["video"] == "clip.mp4" and rows[0]["seam_max"] == round(report.seam_max, 4)


def test_unreadable_inputs_raise_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such video"):
        score_video(tmp_path / "missing.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all")
    with pytest.raises(MediaError, match="garbage.mp4"):
        score_video(garbage)


def test_report_type_is_frozen() -> None:
    assert QualityReport.__dataclass_params__.frozen

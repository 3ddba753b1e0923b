"""Pixel drift checks of DriftDetector on synthetic 24 fps, 64x96 videos: faults flag on time, clean shots never.

Scenes are natural-looking: luminance variation dominates, chroma varies mildly, with crisp block detail.
Faults start at chunk ONSET and grow gradually; each must be flagged at ONSET or ONSET + 1 and nothing may be
flagged before ONSET. Clean shots run the full 60 s (44 chunks of 33 frames = 1452 frames).
"""

from __future__ import annotations

import functools
import json
import time

import cv2
import numpy as np
import pytest

from helios_core.drift import DriftConfig, DriftDetector, DriftWarning

HEIGHT, WIDTH, FPS, CHUNK = 64, 96, 24.0, 33
ONSET = 5
MINUTE_CHUNKS = 44


def smooth_field(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    fy = np.fft.fftfreq(height)[:, None] * height
    fx = np.fft.fftfreq(width)[None, :] * width
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((height, width))) * np.exp(-(fy**2 + fx**2) / 72)))
    return (field - field.mean()) / field.std()


def scene_texture(height: int, width: int, seed: int) -> np.ndarray:
    """Float RGB in [0, 255], periodic in both directions (so rolling it is a seamless pan)."""
    rng = np.random.default_rng(seed)
    luminance = 40 * smooth_field(rng, height, width)[..., None]
    chroma = 12 * np.stack([smooth_field(rng, height, width) for _ in range(3)], axis=-1)
    detail = np.kron(rng.random((height // 4, width // 4)) > 0.5, np.ones((4, 4)))[..., None]
    return np.clip(np.array([120.0, 135.0, 110.0]) + luminance + chroma + 30 * (detail - 0.5), 0, 255)


def cached_scene(make_scene):
    """Build each scene once per session and hand out a read-only array, so no test can alter another's."""

    @functools.lru_cache(maxsize=None)
    def cached(*args: int) -> np.ndarray:
        frames = make_scene(*args)
        frames.flags.writeable = False
        return frames

    return cached


@cached_scene
def static_scene(chunks: int) -> np.ndarray:
    return np.repeat(scene_texture(HEIGHT, WIDTH, 0)[None].astype(np.uint8), chunks * CHUNK, axis=0)


@cached_scene
def moving_object_scene(chunks: int) -> np.ndarray:
    background = scene_texture(HEIGHT, WIDTH, 2).astype(np.uint8)
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    frames = np.repeat(background[None], chunks * CHUNK, axis=0)
    for t in range(len(frames)):
        x = WIDTH / 2 + 30 * np.sin(2 * np.pi * t / (FPS * 4))
        y = HEIGHT / 2 + 12 * np.cos(2 * np.pi * t / (FPS * 3))
        frames[t][(cols - x) ** 2 + (rows - y) ** 2 < 100] = (220, 60, 40)
    return frames


@cached_scene
def pan_scene(chunks: int, speed: int = 1) -> np.ndarray:
    wide = scene_texture(HEIGHT, 4 * WIDTH, 1).astype(np.uint8)
    columns = np.arange(WIDTH)
    return np.stack([wide[:, (columns + speed * t) % wide.shape[1]] for t in range(chunks * CHUNK)])


def slow_lighting_scene(chunks: int) -> np.ndarray:
    """Light rises and falls by 10% over the minute, like a passing cloud or auto-exposure."""
    count = chunks * CHUNK
    gain = 1 + 0.10 * np.sin(2 * np.pi * np.arange(count) / count)
    texture = scene_texture(HEIGHT, WIDTH, 3).astype(np.float32)
    return np.stack([np.clip(texture * g, 0, 255).astype(np.uint8) for g in gain])


def fault_amount(count: int, per_chunk: float) -> np.ndarray:
    """0 until frame ONSET * CHUNK, then growing linearly by `per_chunk` every chunk."""
    return np.clip(np.arange(count) - ONSET * CHUNK, 0, None) / CHUNK * per_chunk


def with_saturation_runaway(frames: np.ndarray) -> np.ndarray:
    gain = 1 + fault_amount(len(frames), 0.5)[:, None, None, None]
    values = frames.astype(np.float32)
    gray = values.mean(axis=-1, keepdims=True)
    return np.clip(gray + gain * (values - gray), 0, 255).astype(np.uint8)


def with_brightness_creep(frames: np.ndarray) -> np.ndarray:
    gain = 1 + fault_amount(len(frames), 0.15)[:, None, None, None]
    return np.clip(frames.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def with_progressive_blur(frames: np.ndarray) -> np.ndarray:
    sigmas = fault_amount(len(frames), 1.0)
    return np.stack([cv2.GaussianBlur(f, (0, 0), s) if s > 0 else f for f, s in zip(frames, sigmas)])


def with_yellow_cast(frames: np.ndarray) -> np.ndarray:
    shift = fault_amount(len(frames), 8.0)[:, None, None, None] * np.array([1.0, 1.0, -1.0])
    return np.clip(frames.astype(np.float32) + shift, 0, 255).astype(np.uint8)


def with_seams(frames: np.ndarray) -> np.ndarray:
    """From chunk ONSET on, every other chunk is displaced by (3, 4) px: a jump at every boundary."""
    out = frames.copy()
    for chunk in range(ONSET, len(frames) // CHUNK, 2):
        out[chunk * CHUNK : (chunk + 1) * CHUNK] = np.roll(frames[chunk * CHUNK : (chunk + 1) * CHUNK], (3, 4), (1, 2))
    return out


def run_detector(frames: np.ndarray, config: DriftConfig | None = None) -> DriftDetector:
    detector = DriftDetector(config or DriftConfig(), fps=FPS, chunk_pixel_frames=CHUNK)
    for chunk in range(len(frames) // CHUNK):
        detector.observe_chunk(chunk, frames[chunk * CHUNK : (chunk + 1) * CHUNK])
    return detector


CLEAN_SCENES = {
    "static": static_scene,
    "moving object": moving_object_scene,
    "camera pan": pan_scene,
    "slow lighting change": slow_lighting_scene,
}


@pytest.mark.parametrize("name", CLEAN_SCENES)
def test_a_clean_minute_raises_no_warning(name: str) -> None:
    detector = run_detector(CLEAN_SCENES[name](MINUTE_CHUNKS))
    assert detector.warnings == []
    assert detector.latent_drift_flag is False


FAULTS = {
    "saturation": with_saturation_runaway,
    "brightness": with_brightness_creep,
    "sharpness": with_progressive_blur,
    "color": with_yellow_cast,
    "seam": with_seams,
}


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("scene", ["moving object", "camera pan"])
def test_each_fault_is_flagged_within_one_chunk_of_its_onset(kind: str, scene: str) -> None:
    detector = run_detector(FAULTS[kind](CLEAN_SCENES[scene](ONSET + 6)))
    assert all(warning.chunk_index >= ONSET for warning in detector.warnings), detector.warnings
    first = next(warning for warning in detector.warnings if warning.kind == kind)
    assert first.chunk_index in (ONSET, ONSET + 1), first
    assert first.second == pytest.approx(first.chunk_index * CHUNK / FPS)
    assert abs(first.value) > first.threshold


def test_gradual_faults_are_not_mistaken_for_seams() -> None:
    for kind in ("saturation", "brightness", "sharpness", "color"):
        detector = run_detector(FAULTS[kind](moving_object_scene(ONSET + 6)))
        assert "seam" not in {warning.kind for warning in detector.warnings}, kind


def test_an_ongoing_drift_warns_when_it_starts_and_when_it_grows_not_every_chunk() -> None:
    detector = run_detector(with_saturation_runaway(moving_object_scene(ONSET + 10)))
    saturation = [warning for warning in detector.warnings if warning.kind == "saturation"]
    assert 2 <= len(saturation) <= 5  # 10 drifting chunks
    severities = [abs(warning.value) / warning.threshold for warning in saturation]
    assert all(later >= 1.5 * earlier for earlier, later in zip(severities, severities[1:]))
    seams = [warning for warning in run_detector(with_seams(pan_scene(ONSET + 10))).warnings if warning.kind == "seam"]
    assert len(seams) == 1  # the same seam at every boundary is one ongoing problem


def test_warning_message_and_dict() -> None:
    detector = run_detector(with_saturation_runaway(static_scene(ONSET + 3)))
    warning = next(w for w in detector.warnings if w.kind == "saturation")
    assert warning.message.startswith("saturation up ")
    assert warning.message.endswith(f"at {warning.second:.1f} s")
    assert f"{abs(warning.value) * 100:.0f}%" in warning.message
    data = json.loads(json.dumps(warning.to_dict()))
    assert DriftWarning(**data) == warning
    assert detector.warnings is not detector.warnings  # a copy: callers cannot edit the history


def test_observe_returns_only_the_new_warnings_and_accepts_missing_frames() -> None:
    frames = with_brightness_creep(static_scene(ONSET + 4))
    detector = DriftDetector(DriftConfig(), fps=FPS)
    returned = []
    for chunk in range(ONSET + 4):
        returned += detector.observe_chunk(chunk, frames[chunk * CHUNK : (chunk + 1) * CHUNK])
        assert detector.observe_chunk(chunk, None) == []
    assert returned == detector.warnings and returned


def test_a_chunk_of_384x640_frames_is_summarised_in_tens_of_ms() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (CHUNK, 384, 640, 3), dtype=np.uint8)
    detector = DriftDetector(DriftConfig(), fps=FPS)
    detector.observe_chunk(0, frames)
    started = time.perf_counter()
    for chunk in range(1, 4):
        detector.observe_chunk(chunk, frames)
    per_chunk = (time.perf_counter() - started) / 3
    assert per_chunk < 0.25, f"{per_chunk * 1000:.0f} ms per chunk"  # ~20-50 ms on one shared laptop core


def test_reset_anchor_accepts_an_intended_content_change() -> None:
    """At a prompt switch the engine rebases: a lasting 30% brighter new segment is content, not drift."""
    frames = static_scene(10).astype(np.float32)
    frames[5 * CHUNK :] *= 1.3
    frames = np.clip(frames, 0, 255).astype(np.uint8)
    plain = run_detector(frames)
    assert "brightness" in {warning.kind for warning in plain.warnings}
    rebased = DriftDetector(DriftConfig(), fps=FPS)
    for chunk in range(10):
        if chunk == 5:
            rebased.reset_anchor()
        rebased.observe_chunk(chunk, frames[chunk * CHUNK : (chunk + 1) * CHUNK])
    assert {warning.kind for warning in rebased.warnings} == {"seam"}  # the cut itself is still reported
    assert [warning.chunk_index for warning in rebased.warnings] == [5]

"""Measuring one world video as it streams: prompt adherence, first-vs-last-15% drift, and chunk seams.

    meter = WorldVideoMeter(prompt, fps, expected_frames)
    for chunk in chunks: meter.push(chunk)        # uint8 RGB (T, H, W, 3), one array per generated chunk
    measures = meter.finish()                     # VideoMeasures

Memory: the full-size frames are kept once, in one buffer allocated for the expected length, because the judge
reads the whole video at the end (its budget of excused occluded seconds spans every second, so it cannot be run a
second at a time). Drift and seam series are a few floats per frame, measured on copies shrunk to the width
`helios bench quality` analyses at, with the same metric functions. Optical flow is left out: it is the costly
part of that bench and none of these measures needs it.

Definitions:
- adherence: the judge's fraction of seconds whose colours, shapes and motions all match the prompt;
- shapes seen: per prompted shape, how many object-seconds the judge read as each shape ("none": no shape found),
  excused occlusions left out (judge.shape_confusion): says what a lost shape became, e.g. diamonds read as circles;
- colour errors: per colour, the seconds it was prompted but not seen ("missing") or seen but not prompted ("extra")
  (judge.color_errors): says whether a failed colour check is an object not drawn or a stray colour;
- drift (HeliosBench, as `helios bench quality`): |mean of the first 15% of frames - mean of the last 15%| of
  brightness, saturation and sharpness; colour drift is the a*b* Delta-E between those two means;
- seam ratio: (mean frame difference across chunk boundaries + floor) / (mean frame difference of all other pairs +
  floor), floor = SEAM_FLOOR (2 grey levels: "too small to see", so a still video reads 1, not 0/0); chunk
  boundaries are where the pushed chunks begin; seam_max is the worst boundary's local seam score
  (metrics.temporal.seam_scores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from helios_core.bench.quality import ANALYSIS_WIDTH
from helios_core.metrics import (
    SEAM_FLOOR,
    brightness,
    downscale_frames,
    edge_drift,
    frame_differences,
    lab_means,
    saturation,
    seam_scores,
    sharpness,
)
from helios_core.world import judge_video
from helios_core.world.judge import color_errors, shape_confusion

DRIFT_METRICS = ("color", "brightness", "saturation", "sharpness")

# Floors of the drift ratio's denominator, one just-noticeable difference per metric. The world's own clips barely
# drift (motions and lighting are periodic: measured 0-0.0003 brightness, 0-0.04 Delta-E over 60 s), so a plain
# ratio would divide by ~0 and explode. A drift below its floor is invisible, so both drifts are floored:
# ratio = max(generated, floor) / max(rendered, floor); "at most 2x rendered" then allows two JNDs on a still scene,
# and a video identical to the render scores exactly 1.
DRIFT_FLOORS = {
    "brightness": 0.01,  # mean luma in [0, 1]: 2.5 grey levels, about one L* unit
    "saturation": 0.01,  # mean HSV S in [0, 1], the same step
    "color": 2.3,  # a*b* Delta-E: one JND
}
# Sharpness has no absolute scale (it depends on the content), so its floor is a share of the rendered clip's mean:
# content moving in and out of view moves it by several percent without any blur.
SHARPNESS_FLOOR_FRACTION = 0.1
MIN_SHARPNESS_FLOOR = 1e-3  # a rendered clip with no edges at all


@dataclass(frozen=True)
class VideoMeasures:
    """Everything measured on one video (generated or rendered)."""

    frames: int
    adherence: float
    color_adherence: float
    shape_adherence: float
    motion_adherence: float
    failed_seconds: tuple[int, ...]  # seconds where colours, shapes or motions did not match
    drift: dict[str, float]  # DRIFT_METRICS
    sharpness_mean: float
    seam_ratio: float
    seam_max: float
    chunk_frames: int
    # expected shape -> {seen shape or "none" -> object-seconds}; defaulted for measures built by hand
    shapes_seen: dict[str, dict[str, int]] = field(default_factory=dict)
    # {"missing" | "extra" -> {colour -> seconds}}: why the colour check failed (judge.color_errors); defaulted too
    color_errors: dict[str, dict[str, int]] = field(default_factory=dict)


def drift_floors(rendered: VideoMeasures) -> dict[str, float]:
    """The denominator floor of each drift ratio (see DRIFT_FLOORS)."""
    sharp = max(SHARPNESS_FLOOR_FRACTION * rendered.sharpness_mean, MIN_SHARPNESS_FLOOR)
    return {**DRIFT_FLOORS, "sharpness": sharp}


def drift_ratios(generated: VideoMeasures, rendered: VideoMeasures) -> dict[str, float]:
    """max(generated, floor) / max(rendered, floor) per drift metric; 1.0 means 'drifts as the world does'."""
    floors = drift_floors(rendered)
    return {
        name: max(generated.drift[name], floors[name]) / max(rendered.drift[name], floors[name])
        for name in DRIFT_METRICS
    }


def seam_measures(differences: np.ndarray, chunk_frames: int) -> tuple[float, float]:
    """(seam ratio, worst boundary's seam score) of a frame-difference series; (1.0, 1.0) with no boundary."""
    differences = np.asarray(differences, dtype=np.float64)
    scores = seam_scores(differences, chunk_frames, SEAM_FLOOR)
    if not scores:
        return 1.0, 1.0
    across = np.array([score.boundary_difference for score in scores])
    inside = np.delete(differences, [score.boundary_frame - 1 for score in scores])
    inside_mean = float(inside.mean()) if inside.size else 0.0
    ratio = (float(across.mean()) + SEAM_FLOOR) / (inside_mean + SEAM_FLOOR)
    return ratio, float(max(score.score for score in scores))


class _FrameBuffer:
    """Consecutive frames in one array: allocated once for the expected length, grown (rarely) if it is passed."""

    def __init__(self, expected_frames: int) -> None:
        self._expected = max(1, int(expected_frames))
        self._array: np.ndarray | None = None
        self.count = 0

    def append(self, chunk: np.ndarray) -> None:
        if self._array is None:
            self._array = np.empty((max(self._expected, len(chunk)), *chunk.shape[1:]), dtype=np.uint8)
        if chunk.shape[1:] != self._array.shape[1:]:
            raise ValueError(f"chunk frames are {chunk.shape[1:]}, earlier ones {self._array.shape[1:]}")
        needed = self.count + len(chunk)
        if needed > len(self._array):
            grown = np.empty((max(needed, 2 * len(self._array)), *self._array.shape[1:]), dtype=np.uint8)
            grown[: self.count] = self._array[: self.count]
            self._array = grown
        self._array[self.count : needed] = chunk
        self.count = needed

    def frames(self) -> np.ndarray:
        return self._array[: self.count] if self._array is not None else np.empty((0, 1, 1, 3), np.uint8)


class WorldVideoMeter:
    """Streams one video's chunks in, then judges and measures it (see the module docstring)."""

    def __init__(self, prompt: str, fps: float, expected_frames: int) -> None:
        self.prompt = prompt
        self.fps = float(fps)
        self._buffer = _FrameBuffer(expected_frames)
        self._series: dict[str, list[float]] = {name: [] for name in ("brightness", "saturation", "lab_a", "lab_b",
                                                                     "sharpness", "difference")}
        self._previous: np.ndarray | None = None
        self._chunk_lengths: list[int] = []

    def push(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk)
        if chunk.ndim != 4 or chunk.shape[-1] != 3 or chunk.dtype != np.uint8:
            raise ValueError(f"a chunk must be uint8 RGB frames (T, H, W, 3), got {chunk.shape} {chunk.dtype}")
        if len(chunk) == 0:
            return
        self._buffer.append(chunk)
        self._chunk_lengths.append(len(chunk))
        small = downscale_frames(chunk, ANALYSIS_WIDTH)
        self._series["brightness"].extend(brightness(small).tolist())
        self._series["saturation"].extend(saturation(small).tolist())
        lab = lab_means(small)
        self._series["lab_a"].extend(lab[:, 1].tolist())
        self._series["lab_b"].extend(lab[:, 2].tolist())
        self._series["sharpness"].extend(sharpness(small).tolist())
        self._series["difference"].extend(frame_differences(small, self._previous).tolist())
        self._previous = small[-1:].copy()

    def _chunk_frames(self) -> int:
        """The chunk length; chunks must be equal but the last (which may be cut), as the engine makes them."""
        lengths = self._chunk_lengths
        if any(length != lengths[0] for length in lengths[:-1]) or lengths[-1] > lengths[0]:
            raise ValueError(f"chunks must all have the same length but the last (shorter) one, got {lengths}")
        return lengths[0]

    def finish(self) -> VideoMeasures:
        """Judge the whole video and reduce the series; the frame buffer is released."""
        if not self._chunk_lengths:
            raise ValueError("no frames were pushed")
        chunk_frames = self._chunk_frames()
        verdict = judge_video(self._buffer.frames(), self.prompt, self.fps)
        frame_count = self._buffer.count
        self._buffer = _FrameBuffer(1)
        series = {name: np.asarray(values, dtype=np.float64) for name, values in self._series.items()}
        drift = {name: edge_drift(series[name]) for name in ("brightness", "saturation", "sharpness")}
        # As `helios bench quality`: the colour drift is the Delta-E between the edges' mean a*b* colours.
        drift["color"] = float(np.hypot(edge_drift(series["lab_a"]), edge_drift(series["lab_b"])))
        seam_ratio, seam_max = seam_measures(series["difference"], chunk_frames)
        return VideoMeasures(
            frames=frame_count,
            adherence=verdict.adherence,
            color_adherence=verdict.color_adherence,
            shape_adherence=verdict.shape_adherence,
            motion_adherence=verdict.motion_adherence,
            failed_seconds=tuple(second.second for second in verdict.seconds if not second.ok),
            drift={name: drift[name] for name in DRIFT_METRICS},
            sharpness_mean=float(series["sharpness"].mean()),
            seam_ratio=seam_ratio,
            seam_max=seam_max,
            chunk_frames=chunk_frames,
            shapes_seen=shape_confusion(verdict),
            color_errors=color_errors(verdict),
        )

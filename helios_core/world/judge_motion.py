"""Motion features of one object over one second of video, and whether they fit a motion word.

Input: the object's blob centres and areas in the frames of the second where it was found. Positions are unwrapped
first (a step of more than half the frame is read as a wrap around the edge), so a left-moving object that re-enters
on the right still reads as moving left. Lengths are in short sides of the frame, times in seconds, so the thresholds
hold at any resolution and frame rate.

Features:
- velocity: least-squares slope of x and y against time;
- per-axis path: the summed absolute displacement within the second's six windows, per second of window (a bouncer
  that turns still has path on both axes while its net velocity may cancel);
- turn rates: the heading change per second between consecutive windows. "Steady turning" (median rate over
  MIN_TURN_RATE, and at least MIN_SAME_WAY of the rates over half that, the same way) is what an orbit does and a
  bounce does not: a bounce runs straight but for one or two sharp turns, so most of its rates are about zero;
- growth: the median of log-area slopes over quarter-second lags, robust to the world's one-frame sawtooth reset.

The thresholds are a fraction (about a quarter) of what the world's motions produce: 0.35 short sides per second for
linear motion and bouncing, a 90-degree turn per second for orbits, log-area growth of about 0.4 per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_SPEED = 0.08  # short sides / s along the stated direction
DOMINANCE = 1.5  # the stated axis must beat the other axis by this factor
MIN_AXIS_PATH = 0.06  # short sides per second on each axis, for bouncing
NUM_WINDOWS = 6  # per second: long enough steps for a stable heading at 64 px, short enough to see an orbit bend
MIN_STEP = 0.02  # short sides per second, below which a window's step has no heading
MIN_TURNS = 3
MIN_TURN_RATE = 40.0  # degrees per second; the world's orbits turn 90
MIN_SAME_WAY = 0.8
MIN_GROWTH = 0.1  # log-area per second
MIN_TRACKED_FRAMES = 6


@dataclass(frozen=True)
class MotionFeatures:
    """What one object's track did over one second (lengths in short sides of the frame)."""

    velocity_x: float  # short sides per second, + is right
    velocity_y: float  # + is down
    path_x: float
    path_y: float
    turn_rates: tuple[float, ...]  # degrees per second between consecutive windows
    growth: float  # log-area per second

    @property
    def steady_turning(self) -> bool:
        """Turning all the time, the same way: an orbit. A bounce turns sharply once or twice, so its median is ~0."""
        rates = np.array(self.turn_rates)
        if len(rates) < MIN_TURNS:
            return False
        median = float(np.median(rates))
        # Most windows must turn the median's way by a fair amount: a bounce's straight runs turn by about zero.
        turning_along = np.mean((np.sign(rates) == np.sign(median)) & (np.abs(rates) >= MIN_TURN_RATE / 2))
        return abs(median) >= MIN_TURN_RATE and turning_along >= MIN_SAME_WAY


def time_windows(times: np.ndarray, second_start: float, second_length: float) -> list[np.ndarray]:
    """Indices of the frames in each of the second's NUM_WINDOWS equal time windows that hold at least two frames.

    By time, not by frame count: frames where the object was hidden or bordered by another leave gaps.
    """
    window_of = np.clip(((times - second_start) / second_length * NUM_WINDOWS).astype(int), 0, NUM_WINDOWS - 1)
    windows = [np.flatnonzero(window_of == window) for window in range(NUM_WINDOWS)]
    return [frames for frames in windows if len(frames) >= 2]


def motion_features(
    times: np.ndarray,
    centers: np.ndarray,
    areas: np.ndarray,
    height: int,
    width: int,
    second_start: float,
    second_length: float,
) -> MotionFeatures | None:
    """Features from (N,) times in s, (N, 2) pixel centres and (N,) areas; None when too few frames to tell."""
    windows = time_windows(times, second_start, second_length)
    if len(times) < MIN_TRACKED_FRAMES or not windows:
        return None
    short = float(min(height, width))
    track = _unwrap(centers, height, width) / short
    velocity_x = float(np.polyfit(times, track[:, 0], 1)[0])
    velocity_y = float(np.polyfit(times, track[:, 1], 1)[0])
    steps = np.array([track[frames[-1]] - track[frames[0]] for frames in windows])
    spans = np.array([times[frames[-1]] - times[frames[0]] for frames in windows])
    mid_times = np.array([times[frames].mean() for frames in windows])
    path_x, path_y = (float(value) for value in np.abs(steps).sum(axis=0) / max(float(spans.sum()), 1e-6))
    moving = np.linalg.norm(steps, axis=1) >= MIN_STEP * spans
    return MotionFeatures(
        velocity_x=velocity_x,
        velocity_y=velocity_y,
        path_x=path_x,
        path_y=path_y,
        turn_rates=_turn_rates(steps, mid_times, moving),
        growth=_growth(times, areas),
    )


def _unwrap(centers: np.ndarray, height: int, width: int) -> np.ndarray:
    sizes = np.array([width, height], dtype=np.float64)
    steps = np.diff(centers, axis=0)
    steps = (steps + sizes / 2) % sizes - sizes / 2  # shortest way round the torus
    return np.concatenate([centers[:1], centers[:1] + np.cumsum(steps, axis=0)])


def _turn_rates(steps: np.ndarray, mid_times: np.ndarray, moving: np.ndarray) -> tuple[float, ...]:
    """Heading change per second between consecutive windows (degrees, + is clockwise on screen).

    Windows whose step is too short to have a heading (not `moving`) are left out, and so are their turns.
    """
    headings = np.degrees(np.arctan2(steps[:, 1], steps[:, 0]))
    rates = []
    for first in range(len(steps) - 1):
        if moving[first] and moving[first + 1]:
            turn = (headings[first + 1] - headings[first] + 180.0) % 360.0 - 180.0
            rates.append(float(turn / max(mid_times[first + 1] - mid_times[first], 1e-6)))
    return tuple(rates)


def _growth(times: np.ndarray, areas: np.ndarray) -> float:
    lag = max(1, len(times) // 4)
    log_areas = np.log(np.maximum(areas, 1.0))
    slopes = (log_areas[lag:] - log_areas[:-lag]) / np.maximum(times[lag:] - times[:-lag], 1e-6)
    return float(np.median(slopes)) if len(slopes) else 0.0


def motion_matches(motion: str, features: MotionFeatures) -> bool:
    """Whether measured features fit a motion word of the vocabulary."""
    vx, vy = features.velocity_x, features.velocity_y
    if motion == "left":
        return vx <= -MIN_SPEED and abs(vx) >= DOMINANCE * abs(vy)
    if motion == "right":
        return vx >= MIN_SPEED and abs(vx) >= DOMINANCE * abs(vy)
    if motion == "up":  # y grows downward on screen
        return vy <= -MIN_SPEED and abs(vy) >= DOMINANCE * abs(vx)
    if motion == "down":
        return vy >= MIN_SPEED and abs(vy) >= DOMINANCE * abs(vx)
    if motion == "bouncing":
        return features.path_x >= MIN_AXIS_PATH and features.path_y >= MIN_AXIS_PATH and not features.steady_turning
    if motion == "orbiting":
        return features.steady_turning
    if motion == "growing":
        return features.growth >= MIN_GROWTH
    if motion == "shrinking":
        return features.growth <= -MIN_GROWTH
    raise ValueError(f"unknown motion {motion!r}")


def describe_motion(features: MotionFeatures | None) -> str:
    """Best single word for what was seen (for debugging reports): a motion id, 'still', or 'untracked'."""
    if features is None:
        return "untracked"
    for motion in ("growing", "shrinking", "orbiting", "left", "right", "up", "down", "bouncing"):
        if motion_matches(motion, features):
            return motion
    return "still"

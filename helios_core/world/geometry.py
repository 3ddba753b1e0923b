"""Shape outlines and object kinematics of the world, as pure functions of (object, time, frame size).

Units: lengths are fractions of the frame's short side `S = min(height, width)`, times are seconds. Keeping both
relative makes a scene look the same at any resolution and frame rate, and gives the judge the same yardstick.

Motions, each true for as long as the clip runs (60 s or more):
- left/right/up/down: constant speed, wrapping around the frame edges like a torus (an object leaving on the left
  re-enters on the right, split across the edge while it crosses, so its area never changes);
- bouncing: diagonal motion, reflected off the frame edges, always fully on screen;
- orbiting: counter-clockwise circle around the object's home point, the centre clamped so the orbit stays on screen;
- growing/shrinking: a sawtooth. The object scales steadily (exponentially) between 0.7x and 1.3x of its size over
  3 s, then jumps back and starts again. We chose this over a triangle wave (which would shrink half the time, making
  "growing" false half the minute) and over saturating (which would stop growing after a few seconds): the sawtooth
  is growing at every moment except the one reset frame in 72.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Protocol

import numpy as np

SIZE_RADIUS = {"small": 0.10, "medium": 0.13, "large": 0.17}
LINEAR_SPEED = 0.35  # short sides per second
BOUNCE_SPEED = 0.35  # along the diagonal
ORBIT_RADIUS = 0.20
ORBIT_PERIOD_S = 4.0
GROW_RANGE = (0.7, 1.3)
GROW_PERIOD_S = 3.0
EDGE_MARGIN_PX = 1.0
_CIRCLE_VERTICES = 48


class Placed(Protocol):
    """What kinematics needs from an object (WorldObject in scene.py)."""

    shape: str
    size: str
    motion: str
    start_x: float
    start_y: float
    phase: float


@lru_cache(maxsize=None)
def unit_outline(shape: str) -> np.ndarray:
    """Vertices (N, 2) of a shape of nominal radius 1 centred on (0, 0), y pointing down (read-only: it is cached).

    The proportions keep the five shapes of one size at roughly the same area (2.3 to 3.3 r^2), so size words mean
    the same for every shape.
    """
    outline = _outline(shape)
    outline.flags.writeable = False
    return outline


def _outline(shape: str) -> np.ndarray:
    if shape == "circle":
        angles = np.linspace(0.0, 2 * math.pi, _CIRCLE_VERTICES, endpoint=False)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if shape == "square":
        return np.array([[-0.9, -0.9], [0.9, -0.9], [0.9, 0.9], [-0.9, 0.9]])
    if shape == "diamond":
        return np.array([[0.0, -1.25], [0.95, 0.0], [0.0, 1.25], [-0.95, 0.0]])
    if shape == "triangle":
        # Apex up; the bounding box is centred on the object's position.
        return np.array([[0.0, -1.05], [1.2, 1.05], [-1.2, 1.05]])
    if shape == "star":
        angles = -math.pi / 2 + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.3, 0.55)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    raise ValueError(f"unknown shape {shape!r}")


def half_extent(shape: str) -> tuple[float, float]:
    """Half width and half height of a shape of radius 1."""
    outline = unit_outline(shape)
    return float(np.abs(outline[:, 0]).max()), float(np.abs(outline[:, 1]).max())


def base_radius_px(size: str, height: int, width: int) -> float:
    return SIZE_RADIUS[size] * min(height, width)


def scale_at(obj: Placed, t: float) -> float:
    """Size multiplier at time t: 1 except for growing/shrinking (a sawtooth in log scale, see module doc)."""
    if obj.motion not in ("growing", "shrinking"):
        return 1.0
    progress = (obj.phase + t / GROW_PERIOD_S) % 1.0
    if obj.motion == "shrinking":
        progress = 1.0 - progress
    low, high = GROW_RANGE
    return low * (high / low) ** progress


def _max_scale(obj: Placed) -> float:
    return GROW_RANGE[1] if obj.motion in ("growing", "shrinking") else 1.0


def _clamp(value: float, low: float, high: float) -> float:
    """Clamp a centre between margins, keeping EDGE_MARGIN_PX more so anti-aliased edges are not cut by the frame."""
    low, high = low + EDGE_MARGIN_PX, high - EDGE_MARGIN_PX
    # When the margins cross (a huge object in a tiny frame) the centre is the only sane place.
    return (low + high) / 2 if low > high else min(max(value, low), high)


def _reflect(value: float, low: float, high: float) -> float:
    """Position of a point bouncing between low and high, given where it would be without walls."""
    span = high - low
    if span <= 0:
        return (low + high) / 2
    folded = (value - low) % (2 * span)
    return low + (folded if folded <= span else 2 * span - folded)


def center_at(obj: Placed, t: float, height: int, width: int) -> tuple[float, float]:
    """Centre (x, y) in pixels at time t. Linear motions return positions wrapped into [0, width) x [0, height)."""
    short = min(height, width)
    radius = base_radius_px(obj.size, height, width) * _max_scale(obj)
    half_w, half_h = (extent * radius for extent in half_extent(obj.shape))
    home_x, home_y = obj.start_x * width, obj.start_y * height
    travel = LINEAR_SPEED * short * t
    if obj.motion in ("left", "right"):
        sign = -1.0 if obj.motion == "left" else 1.0
        return (home_x + sign * travel) % width, _clamp(home_y, half_h, height - half_h)
    if obj.motion in ("up", "down"):
        sign = -1.0 if obj.motion == "up" else 1.0
        return _clamp(home_x, half_w, width - half_w), (home_y + sign * travel) % height
    if obj.motion == "bouncing":
        # The phase picks one of the four diagonals.
        quadrant = int(obj.phase * 4) % 4
        sign_x = 1.0 if quadrant in (0, 3) else -1.0
        sign_y = 1.0 if quadrant in (0, 1) else -1.0
        step = BOUNCE_SPEED * short * t / math.sqrt(2)
        margin_x, margin_y = half_w + EDGE_MARGIN_PX, half_h + EDGE_MARGIN_PX
        x = _reflect(_clamp(home_x, half_w, width - half_w) + sign_x * step, margin_x, width - margin_x)
        y = _reflect(_clamp(home_y, half_h, height - half_h) + sign_y * step, margin_y, height - margin_y)
        return x, y
    if obj.motion == "orbiting":
        orbit = ORBIT_RADIUS * short
        center_x = _clamp(home_x, orbit + half_w, width - orbit - half_w)
        center_y = _clamp(home_y, orbit + half_h, height - orbit - half_h)
        angle = 2 * math.pi * (obj.phase + t / ORBIT_PERIOD_S)
        # Counter-clockwise on screen: y points down, hence the minus.
        return center_x + orbit * math.cos(angle), center_y - orbit * math.sin(angle)
    # growing / shrinking stay in place, clamped for their largest size.
    return _clamp(home_x, half_w, width - half_w), _clamp(home_y, half_h, height - half_h)


def outlines_at(obj: Placed, t: float, height: int, width: int) -> list[np.ndarray]:
    """Pixel-space outlines (N, 2) to fill at time t: one, or several copies while a wrapping object crosses an edge."""
    center_x, center_y = center_at(obj, t, height, width)
    radius = base_radius_px(obj.size, height, width) * scale_at(obj, t)
    outline = unit_outline(obj.shape) * radius
    half_w, half_h = half_extent(obj.shape)
    outlines = []
    for shift_x in (-width, 0, width):
        for shift_y in (-height, 0, height):
            x, y = center_x + shift_x, center_y + shift_y
            if x + half_w * radius > 0 and x - half_w * radius < width and y + half_h * radius > 0 and (
                y - half_h * radius < height
            ):
                outlines.append(outline + np.array([x, y]))
    return outlines

"""Rendering a scene: `render_frames(scene, start_frame, num_frames, height, width) -> (T, H, W, 3) uint8 RGB`
(`render_background`: the same frames without the objects; `render_frames_and_background`: both in one pass).

Each frame is a pure function of (scene, frame index, size): frame i shows time i / 24 s. So a 60 s clip can be made
chunk by chunk in constant memory, and any chunk equals the same frames of a longer render.

Layers, back to front:
- background: solid; vertical gradient (base tone at the top, shade at the bottom); vertical stripes; checker. The
  stripes and checker are computed analytically with exact box-filter coverage per pixel (anti-aliased, and smooth
  under sub-pixel pan steps, which a rolled bitmap would not be). A camera pan scrolls the background only: objects'
  motions are stated relative to the frame, so "moving up" stays true on screen during a pan right.
- objects, largest first (so small ones are never hidden completely; caption order among equals), anti-aliased by
  filling an 8x finer mask of each object's box and averaging it down (smooth sub-pixel motion on every edge).
- lighting change: the whole frame's brightness follows 1 + 0.15 sin(2 pi t / 8 s).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from helios_core.errors import ConfigError
from helios_core.world.geometry import SIZE_RADIUS, outlines_at
from helios_core.world.scene import Scene
from helios_core.world.vocabulary import COLORS, shade_of

WORLD_FPS = 24
STRIPE_PERIOD = 0.25  # short sides; each stripe is half a period wide
PAN_SPEED = 0.06  # short sides per second: slow next to the objects' 0.35
LIGHTING_AMPLITUDE = 0.15
LIGHTING_PERIOD_S = 8.0
MIN_SIDE = 8
_SUBPIXEL_BITS = 4
SUPERSAMPLE = 8


def render_frames(scene: Scene, start_frame: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """Frames start_frame .. start_frame + num_frames - 1 of `scene`, as uint8 RGB (num_frames, height, width, 3)."""
    return _render(scene, start_frame, num_frames, height, width, with_objects=True, keep_background=False)[0]


def render_background(scene: Scene, start_frame: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """The same frames as `render_frames` without the objects: background, camera pan and lighting only.

    Where the two differ is where the objects are (their anti-aliased rims included), e.g. to weigh a loss there.
    """
    return _render(scene, start_frame, num_frames, height, width, with_objects=False, keep_background=False)[0]


def render_frames_and_background(
    scene: Scene, start_frame: int, num_frames: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """`render_frames` and `render_background` of the same frames in one pass: the background is drawn once (it is
    about 40% of a full render's time at 128x256)."""
    frames, background = _render(scene, start_frame, num_frames, height, width, with_objects=True, keep_background=True)
    assert background is not None
    return frames, background


def _render(scene: Scene, start_frame: int, num_frames: int, height: int, width: int, *, with_objects: bool,
            keep_background: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(frames, their background before the objects were painted, or None unless `keep_background`)."""
    if start_frame < 0 or num_frames < 0:
        raise ConfigError(f"frames must be non-negative, got start_frame={start_frame}, num_frames={num_frames}")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ConfigError(f"world frames must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {height}x{width}")
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    background = np.empty_like(frames) if keep_background else None
    # Larger objects first, so a small object passing a large one stays on top and is never hidden completely.
    drawing_order = sorted(scene.objects, key=lambda obj: -SIZE_RADIUS[obj.size]) if with_objects else []
    static_background = None if scene.camera_pan else _background(scene, 0.0, height, width)
    for offset in range(num_frames):
        t = (start_frame + offset) / WORLD_FPS
        frame = frames[offset]
        frame[:] = static_background if static_background is not None else _background(scene, t, height, width)
        if background is not None:
            background[offset] = frame
        for obj in drawing_order:
            for outline in outlines_at(obj, t, height, width):
                _paint(frame, outline, COLORS[obj.color])
    if scene.lighting_change and num_frames:
        frames = _lit(frames, start_frame)
        background = None if background is None else _lit(background, start_frame)
    return frames, background


def _lit(frames: np.ndarray, start_frame: int) -> np.ndarray:
    """The frames under the world's lighting change (a slow brightness oscillation), as new uint8 frames."""
    times = (start_frame + np.arange(len(frames))) / WORLD_FPS
    gains = 1.0 + LIGHTING_AMPLITUDE * np.sin(2 * math.pi * times / LIGHTING_PERIOD_S)
    lit = frames.astype(np.float32) * gains[:, None, None, None].astype(np.float32)
    return np.clip(lit + 0.5, 0, 255).astype(np.uint8)


def _paint(frame: np.ndarray, outline: np.ndarray, rgb: tuple[int, int, int]) -> None:
    """Blend a filled polygon (frame units: pixel i spans [i, i+1)) into frame, in place, anti-aliased.

    Coverage comes from a SUPERSAMPLE-times finer (itself anti-aliased) mask of the polygon's box, area-averaged down.
    cv2's LINE_AA fill alone is not enough: it anti-aliases slanted edges but moves horizontal edges in whole-pixel
    steps, which makes slow vertical motion judder; and a plain 4x mask quantises coverage so coarsely that a growing
    object's area stalls for a frame now and then.
    """
    height, width = frame.shape[:2]
    left, top = max(int(np.floor(outline[:, 0].min())), 0), max(int(np.floor(outline[:, 1].min())), 0)
    right, bottom = min(int(np.ceil(outline[:, 0].max())), width), min(int(np.ceil(outline[:, 1].max())), height)
    if right <= left or bottom <= top:
        return
    box_w, box_h = right - left, bottom - top
    fine = np.zeros((box_h * SUPERSAMPLE, box_w * SUPERSAMPLE), np.uint8)
    # Fine pixel j is centred on (j + 0.5) / SUPERSAMPLE in frame units; cv2 puts pixel centres on integers.
    points = ((outline - (left, top)) * SUPERSAMPLE - 0.5) * (1 << _SUBPIXEL_BITS)
    cv2.fillPoly(fine, [np.round(points).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=_SUBPIXEL_BITS)
    coverage = cv2.resize(fine, (box_w, box_h), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0
    region = frame[top:bottom, left:right]
    blended = region * (1.0 - coverage) + np.array(rgb, np.float32) * coverage
    region[:] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _background(scene: Scene, t: float, height: int, width: int) -> np.ndarray:
    """One background frame (H, W, 3) uint8: a blend of the colour's base tone and its shade by a coverage map."""
    base = np.array(COLORS[scene.background_color], dtype=np.float32)
    shade = np.array(shade_of(scene.background_color), dtype=np.float32)
    short = min(height, width)
    pan_offset = 0.0
    if scene.camera_pan is not None:
        # Camera moving right makes the scenery slide left, i.e. we sample further right as time goes on.
        pan_offset = (1.0 if scene.camera_pan == "right" else -1.0) * PAN_SPEED * short * t
    period = STRIPE_PERIOD * short
    if scene.background == "solid":
        coverage = np.zeros((height, width), dtype=np.float32)
    elif scene.background == "gradient":
        column = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
        coverage = np.broadcast_to(column, (height, width))
    elif scene.background == "striped":
        coverage = np.broadcast_to(_stripe_coverage(width, period, pan_offset)[None, :], (height, width))
    else:  # checkered: XOR of a vertical and a horizontal stripe pattern
        across = _stripe_coverage(width, period, pan_offset)[None, :]
        down = _stripe_coverage(height, period, 0.0)[:, None]
        coverage = across * (1.0 - down) + (1.0 - across) * down
    image = base + (shade - base) * coverage[..., None]
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _stripe_coverage(length: int, period: float, offset: float) -> np.ndarray:
    """Fraction of each pixel [i, i+1) + offset covered by the dark half of a square wave of `period`.

    Computed from the wave's integral, so it is the exact area average (box-filter anti-aliasing); we do it by hand
    because cv2 has no analytic pattern generator and supersampling would still step under slow pans.
    """
    edges = np.arange(length + 1, dtype=np.float64) + offset
    cycles = np.floor(edges / period)
    within = edges - cycles * period
    integral = cycles * period / 2 + np.maximum(within - period / 2, 0.0)
    return np.diff(integral).astype(np.float32)

"""Rendering: shapes and dtype, chunk independence, and that each motion really does what its word says."""

from __future__ import annotations

import numpy as np
import pytest

from helios_core.errors import ConfigError
from helios_core.world import COLORS, WORLD_FPS, Scene, WorldObject, render_frames, sample_scene, scene_from_prompt

HEIGHT, WIDTH = 64, 112


def _one_object(shape: str, motion: str, *, x: float = 0.5, y: float = 0.5, background: str = "solid",
                camera_pan: str | None = None, lighting: bool = False, size: str = "medium") -> Scene:
    obj = WorldObject(shape=shape, color="red", size=size, motion=motion, start_x=x, start_y=y, phase=0.0)
    return Scene((obj,), background, "blue", camera_pan, lighting, seed=0)


def _red_coverage(frames: np.ndarray) -> np.ndarray:
    """How much of each pixel the red test object covers (0..1), read off the red channel against the blue background.

    Anti-aliased edges make this sub-pixel exact, where a thresholded mask would move in whole-pixel steps.
    """
    background_red, object_red = COLORS["blue"][0], COLORS["red"][0]
    return np.clip((frames[..., 0].astype(float) - background_red) / (object_red - background_red), 0.0, 1.0)


def _red_mask(frames: np.ndarray) -> np.ndarray:
    return _red_coverage(frames) > 0.05


def _centroids(frames: np.ndarray) -> np.ndarray:
    coverage = _red_coverage(frames)
    ys, xs = np.indices(coverage.shape[1:])
    total = coverage.sum(axis=(1, 2))
    return np.stack([(coverage * xs).sum(axis=(1, 2)) / total, (coverage * ys).sum(axis=(1, 2)) / total], axis=1)


def test_render_shape_dtype_and_determinism() -> None:
    scene = sample_scene(11)
    frames = render_frames(scene, 0, 10, HEIGHT, WIDTH)
    assert frames.shape == (10, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, render_frames(scene, 0, 10, HEIGHT, WIDTH))
    assert render_frames(scene, 5, 0, HEIGHT, WIDTH).shape == (0, HEIGHT, WIDTH, 3)


def test_frames_are_a_pure_function_of_the_frame_index() -> None:
    scene = scene_from_prompt(
        "a small red circle moving left and a large yellow star orbiting on a blue striped background, "
        "slow camera pan right, changing light",
        seed=1,
    )
    whole = render_frames(scene, 30, 40, HEIGHT, WIDTH)
    pieces = np.concatenate([render_frames(scene, 30, 13, HEIGHT, WIDTH), render_frames(scene, 43, 27, HEIGHT, WIDTH)])
    assert np.array_equal(whole, pieces)
    assert not np.array_equal(whole[0], whole[-1])


@pytest.mark.parametrize(
    ("motion", "axis", "sign"), [("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1)]
)
def test_linear_motions_move_the_stated_way(motion: str, axis: int, sign: int) -> None:
    frames = render_frames(_one_object("square", motion), 0, 12, HEIGHT, WIDTH)
    steps = np.diff(_centroids(frames), axis=0)
    assert np.all(sign * steps[:, axis] > 0.3)  # about 0.93 px per frame at this size
    assert np.all(np.abs(steps[:, 1 - axis]) < 0.05)


def test_left_motion_wraps_around_and_keeps_its_area() -> None:
    scene = _one_object("circle", "left", x=0.05)
    frames = render_frames(scene, 0, 2 * WORLD_FPS, HEIGHT, WIDTH)  # 0.35 * 64 px/s: from x = 5.6 to x = 73
    areas = _red_coverage(frames).sum(axis=(1, 2))
    assert areas.min() > 0.98 * areas.max()  # never leaves the screen, even while split across the edge
    masks = _red_mask(frames)
    assert any(mask[:, 0].any() and mask[:, -1].any() for mask in masks)  # it was split across the edge
    assert _centroids(frames[-1:])[0, 0] > WIDTH / 2  # and came back in on the right


def test_orbit_stays_on_screen_for_a_minute() -> None:
    scene = _one_object("star", "orbiting", x=0.95, y=0.05, size="large")
    frames = render_frames(scene, 0, 60 * WORLD_FPS, 32, 56)[::6]
    areas = _red_coverage(frames).sum(axis=(1, 2))
    assert areas.min() > 0.95 * areas.max()  # a star cut by an edge would lose far more
    masks = _red_mask(frames)
    assert not masks[:, 0, :].any() and not masks[:, -1, :].any()
    assert not masks[:, :, 0].any() and not masks[:, :, -1].any()


def test_bouncing_stays_on_screen_and_moves_diagonally() -> None:
    frames = render_frames(_one_object("diamond", "bouncing"), 0, 20 * WORLD_FPS, HEIGHT, WIDTH)[::3]
    masks = _red_mask(frames)
    assert not masks[:, [0, -1], :].any() and not masks[:, :, [0, -1]].any()
    steps = np.diff(_centroids(frames[:4]), axis=0)
    assert np.all(np.abs(steps) > 1.0)


@pytest.mark.parametrize(("motion", "sign"), [("growing", 1), ("shrinking", -1)])
def test_growing_and_shrinking_change_size_steadily(motion: str, sign: int) -> None:
    frames = render_frames(_one_object("circle", motion), 0, 2 * WORLD_FPS, HEIGHT, WIDTH)
    areas = _red_coverage(frames).sum(axis=(1, 2))
    changes = np.sign(np.diff(areas))
    # A sawtooth: the area changes the stated way in every frame but the reset (once per 3 s cycle; the phase-0
    # object of this test starts a cycle, so no reset falls within these 2 s).
    assert np.all(changes == sign)
    assert sign * (areas[20] - areas[0]) > 0.3 * areas[:21].min()


def test_camera_pan_scrolls_the_background_and_not_the_object() -> None:
    still = render_frames(_one_object("square", "growing", background="striped"), 0, 24, HEIGHT, WIDTH)
    panned = render_frames(_one_object("square", "growing", background="striped", camera_pan="right"), 0, 24,
                           HEIGHT, WIDTH)
    top_row_still, top_row_panned = still[:, 0, :, 2].astype(int), panned[:, 0, :, 2].astype(int)
    assert np.array_equal(top_row_still[0], top_row_still[-1])
    assert not np.array_equal(top_row_panned[0], top_row_panned[-1])
    # Camera to the right means the stripes slide left: the last frame matches the first one shifted left.
    shift = int(round(0.06 * HEIGHT * 23 / WORLD_FPS))  # PAN_SPEED short sides per second, over 23 frames
    first, last = top_row_panned[0], top_row_panned[-1]
    assert np.abs(last[:-shift] - first[shift:]).mean() < 0.5 * np.abs(last[shift:] - first[:-shift]).mean()
    assert np.allclose(_centroids(still), _centroids(panned), atol=0.1)


def test_lighting_change_changes_brightness_over_time() -> None:
    lit = render_frames(_one_object("circle", "growing", lighting=True), 0, 48, HEIGHT, WIDTH)
    plain = render_frames(_one_object("circle", "growing"), 0, 48, HEIGHT, WIDTH)
    assert np.array_equal(lit[0], plain[0])  # the change starts from normal light
    assert lit[47].astype(float).mean() > plain[47].astype(float).mean() + 3


def test_bad_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least"):
        render_frames(sample_scene(0), 0, 1, 4, 4)
    with pytest.raises(ConfigError, match="non-negative"):
        render_frames(sample_scene(0), -1, 1, HEIGHT, WIDTH)


def test_background_render_is_the_frames_without_their_objects():
    """Outside every object's outline box the two renders are equal (pan and lighting included); at each object's
    centre they differ (an object never has its background's colour)."""
    from helios_core.world.geometry import outlines_at
    from helios_core.world.render import render_background

    scene = scene_from_prompt(
        "a large red star moving left and a small blue circle orbiting on a green striped background, "
        "slow camera pan right, changing light", seed=3)
    height, width, start = 64, 128, 40
    frames = render_frames(scene, start, 5, height, width)
    background = render_background(scene, start, 5, height, width)
    assert background.shape == frames.shape and background.dtype == np.uint8
    for offset in range(5):
        inside = np.zeros((height, width), bool)
        for obj in scene.objects:
            for outline in outlines_at(obj, (start + offset) / WORLD_FPS, height, width):
                left, top = np.floor(outline.min(axis=0)).astype(int) - 1
                right, bottom = np.ceil(outline.max(axis=0)).astype(int) + 1
                inside[max(top, 0):bottom, max(left, 0):right] = True
                cx, cy = outline.mean(axis=0).astype(int)
                if 0 <= cx < width and 0 <= cy < height:
                    assert np.any(frames[offset, cy, cx] != background[offset, cy, cx])
        assert np.array_equal(frames[offset][~inside], background[offset][~inside])
    assert not np.array_equal(background[0], background[-1])  # the pan and the lighting still move it


def test_frames_and_background_in_one_pass_equal_the_two_renders():
    from helios_core.world.render import render_background, render_frames_and_background

    for prompt in ("a small red star moving left on a green striped background, slow camera pan right, changing light",
                   "a large white square bouncing on a blue gradient background"):
        scene = scene_from_prompt(prompt, seed=5)
        frames, background = render_frames_and_background(scene, 30, 4, 32, 64)
        assert np.array_equal(frames, render_frames(scene, 30, 4, 32, 64))
        assert np.array_equal(background, render_background(scene, 30, 4, 32, 64))

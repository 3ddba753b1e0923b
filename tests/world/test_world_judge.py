"""The ground-truth judge: high on the world's own renders (also blurred and compressed), low on wrong videos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from helios_core.errors import MediaError
from helios_core.world import (
    WORLD_FPS,
    JudgeReport,
    ObjectVerdict,
    PromptError,
    SecondVerdict,
    judge_video,
    render_frames,
    scene_from_prompt,
)
from helios_core.world.judge import color_errors, shape_confusion

HEIGHT, WIDTH = 64, 112
TRUE_PROMPTS = [
    "a small red circle moving left and a large yellow star orbiting on a blue striped background, "
    "slow camera pan right",
    "a medium green square moving up and a small white triangle moving down on a purple gradient background, "
    "changing light",
    "a large pink diamond bouncing on a black checkered background",
    "a medium cyan star growing and a medium orange circle shrinking on a white background",
    "a small blue triangle moving right on a yellow background",
]


def _render(prompt: str, seconds: float, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    return render_frames(scene_from_prompt(prompt, seed), 0, round(seconds * WORLD_FPS), height, width)


def _degrade(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """Blur, JPEG at quality 60 and +-4 noise: roughly what a VAE decode and an H.264 encode do to a frame."""
    rng = np.random.default_rng(seed)
    degraded = []
    for frame in frames:
        blurred = cv2.GaussianBlur(frame, (5, 5), 1.0)
        _, encoded = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, 60])
        noisy = cv2.imdecode(encoded, cv2.IMREAD_COLOR).astype(np.int16) + rng.integers(-4, 5, frame.shape)
        degraded.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return np.stack(degraded)


@pytest.mark.parametrize("prompt", TRUE_PROMPTS)
def test_true_renders_score_high(prompt: str) -> None:
    report = judge_video(_render(prompt, 4), prompt)
    assert len(report.seconds) == 4
    assert report.adherence >= 0.95, report.to_dict()


def test_a_minute_of_orbit_and_wrap_around_stays_adherent() -> None:
    prompt = "a medium red circle orbiting and a medium yellow square moving left on a blue background"
    report = judge_video(_render(prompt, 60, 48, 84), prompt)
    assert len(report.seconds) == 60
    assert report.adherence >= 0.95, [second.second for second in report.seconds if not second.ok]
    assert report.seconds[-1].ok  # still true at the end of the minute, not only at the start


def test_degraded_renders_still_score_high() -> None:
    for prompt in TRUE_PROMPTS[:2]:
        report = judge_video(_degrade(_render(prompt, 3, 128, 224)), prompt)
        assert report.adherence >= 0.95, report.to_dict()


@pytest.mark.parametrize(
    ("rendered", "judged_against", "failing"),
    [
        # wrong colour: a green circle where the prompt says red
        ("a small green circle moving left on a blue background",
         "a small red circle moving left on a blue background", "color_adherence"),
        # wrong direction
        ("a small red circle moving right on a blue background",
         "a small red circle moving left on a blue background", "motion_adherence"),
        ("a medium red square moving down on a white background",
         "a medium red square moving up on a white background", "motion_adherence"),
        # wrong kind of motion
        ("a large purple star bouncing on a cyan background",
         "a large purple star orbiting on a cyan background", "motion_adherence"),
        ("a medium orange diamond shrinking on a green background",
         "a medium orange diamond growing on a green background", "motion_adherence"),
        # wrong shape
        ("a medium red circle moving left on a blue background",
         "a medium red square moving left on a blue background", "shape_adherence"),
        ("a medium red triangle moving left on a blue background",
         "a medium red diamond moving left on a blue background", "shape_adherence"),
        # a missing object
        ("a small red circle moving left on a blue background",
         "a small red circle moving left and a large white star growing on a blue background", "color_adherence"),
    ],
)
def test_mismatched_prompts_score_low(rendered: str, judged_against: str, failing: str) -> None:
    frames = _render(rendered, 3)
    assert judge_video(frames, rendered).adherence >= 0.95  # the video itself is fine
    report = judge_video(frames, judged_against)
    assert report.adherence <= 0.34
    assert getattr(report, failing) <= 0.34


def test_degraded_wrong_direction_still_scores_low() -> None:
    frames = _degrade(_render("a small red circle moving right on a blue background", 3, 128, 224))
    assert judge_video(frames, "a small red circle moving left on a blue background").adherence == 0.0


def test_report_has_per_second_detail_and_serialises() -> None:
    prompt = TRUE_PROMPTS[0]
    report = judge_video(_render(prompt, 2.5), prompt)
    assert [second.second for second in report.seconds] == [0, 1, 2]  # the last half second is judged too
    detail = report.seconds[0]
    assert detail.expected_colors == ("red", "yellow") and detail.seen_colors == ("red", "yellow")
    assert [obj.color for obj in detail.objects] == ["red", "yellow"]
    assert detail.objects[0].seen_shape == "circle" and detail.objects[0].seen_motion == "left"
    assert detail.objects[1].seen_motion == "orbiting"
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["adherence"] == report.adherence and len(as_dict["seconds"]) == 3


def _object(expected: str, seen: str | None, excused: bool = False) -> ObjectVerdict:
    return ObjectVerdict(color="red", expected_shape=expected, seen_shape=seen, expected_motion="still",
                         seen_motion="still", found_fraction=1.0, occluded=excused, shape_ok=seen == expected,
                         motion_ok=True, features=None, excused=excused)


def test_shape_confusion_counts_unexcused_object_seconds_with_none_for_no_shape() -> None:
    seconds = [
        (_object("diamond", "circle"), _object("triangle", "triangle")),
        (_object("diamond", "circle"), _object("triangle", None)),
        (_object("diamond", "diamond", excused=True), _object("triangle", "circle")),  # the excused one is left out
    ]
    report = JudgeReport("a prompt", 24.0, tuple(SecondVerdict(index, (), (), True, objects)
                                                 for index, objects in enumerate(seconds)))
    confusion = shape_confusion(report)
    assert confusion == {"diamond": {"circle": 2}, "triangle": {"circle": 1, "none": 1, "triangle": 1}}
    assert list(confusion) == ["diamond", "triangle"] and list(confusion["triangle"]) == ["circle", "none", "triangle"]


def test_shape_confusion_of_clean_renders_is_diagonal() -> None:
    for prompt, expected in [(TRUE_PROMPTS[0], {"circle": {"circle": 2}, "star": {"star": 2}}),
                             (TRUE_PROMPTS[2], {"diamond": {"diamond": 2}})]:
        assert shape_confusion(judge_video(_render(prompt, 2), prompt)) == expected


def test_color_errors_name_the_missing_and_the_extra_colours() -> None:
    # A red circle rendered, judged as a green one: green is missing and red extra, in every judged second.
    rendered = "a large red circle moving left on a blue background"
    report = judge_video(_render(rendered, 2), rendered.replace("red", "green"))
    assert report.color_adherence == 0.0
    assert color_errors(report) == {"missing": {"green": 2}, "extra": {"red": 2}}
    # The same frames judged against their own prompt: nothing missing, nothing extra.
    assert color_errors(judge_video(_render(rendered, 2), rendered)) == {"missing": {}, "extra": {}}


def test_color_errors_count_seconds_and_sort_their_keys() -> None:
    seconds = [(("green", "red"), ("blue", "red")), (("green", "red"), ("green", "red", "white", "blue")),
               (("green",), ())]
    report = JudgeReport("a prompt", 24.0, tuple(SecondVerdict(index, expected, seen, False, ())
                                                 for index, (expected, seen) in enumerate(seconds)))
    errors = color_errors(report)
    assert errors == {"missing": {"green": 2}, "extra": {"blue": 2, "white": 1}}
    assert list(errors["extra"]) == ["blue", "white"]


def test_bad_inputs_raise_clear_errors() -> None:
    frames = _render("a small red circle moving left on a blue background", 1)
    with pytest.raises(PromptError):
        judge_video(frames, "a small red dog moving left on a blue background")
    with pytest.raises(MediaError, match="uint8"):
        judge_video(frames.astype(np.float32), "a small red circle moving left on a blue background")
    with pytest.raises(MediaError, match="at least"):
        judge_video(frames[:3], "a small red circle moving left on a blue background")

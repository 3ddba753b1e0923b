"""The world bench's core: the held-out prompt set, the drift/seam maths on videos with known answers, and whole
runs with injected frame sources (the world's own clip, a seamed copy of it) instead of a model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from helios_core.bench import world_quality_prompts
from helios_core.bench.world_quality import (
    ModelSummary,
    VideoMeasures,
    VideoResult,
    WorldModel,
    WorldQualityReport,
    WorldQualitySettings,
    heldout_prompts,
    rendered_source,
    run_world_quality,
    world_table_rows,
)
from helios_core.bench.world_quality_measure import DRIFT_FLOORS, WorldVideoMeter, drift_ratios
from helios_core.config import GenerationConfig
from helios_core.errors import ConfigError, OutputPathError
from helios_core.metrics import SEAM_FLOOR
from helios_core.pipeline import plan_frames
from helios_core.world import caption, parse_prompt, sample_scene, split_triples

PROMPT = "a red circle moving left on a blue background"


def small_config(**values: object) -> GenerationConfig:
    base = {"video.height": 64, "video.width": 128, "video.seconds": 2.0, "video.num_frames": None}
    return GenerationConfig().with_values({**base, **values})


def settings(tmp_path: Path, *labels: str, **values: object) -> WorldQualitySettings:
    return WorldQualitySettings(config=small_config(), models=tuple(WorldModel(label) for label in labels),
                                num_prompts=1, seed=0, out_dir=tmp_path / "out", write_videos=False, **values)


def grey_video(levels: np.ndarray, size: tuple[int, int] = (32, 64)) -> np.ndarray:
    """Uniform frames, frame t at grey level levels[t] (every pixel, every channel)."""
    frames = np.empty((len(levels), *size, 3), np.uint8)
    frames[:] = np.asarray(levels, np.uint8)[:, None, None, None]
    return frames


def measure(frames: np.ndarray, chunk: int):
    meter = WorldVideoMeter(PROMPT, 24, expected_frames=len(frames) - 5)  # the buffer must grow past its guess
    for start in range(0, len(frames), chunk):
        meter.push(frames[start : start + chunk])
    return meter.finish()


def test_heldout_prompt_set_is_deterministic_distinct_and_only_heldout_combinations() -> None:
    prompts = heldout_prompts(12, seed=3)
    assert prompts == heldout_prompts(12, seed=3)
    assert len(prompts) == 12 and len({item.prompt for item in prompts}) == 12
    assert prompts[:5] == heldout_prompts(5, seed=3)  # a bigger set extends a smaller one: runs stay comparable
    assert {item.prompt for item in prompts} != {item.prompt for item in heldout_prompts(12, seed=4)}
    train, heldout = set(split_triples("train")), set(split_triples("heldout"))
    for item in prompts:
        assert item.prompt == caption(item.scene) and item.seed == item.scene.seed
        for obj in parse_prompt(item.prompt).objects:
            assert (obj.color, obj.shape, obj.motion) in heldout
            assert (obj.color, obj.shape, obj.motion) not in train


def test_repeated_captions_are_skipped_and_an_impossible_count_is_one_error(monkeypatch) -> None:
    # Only two different scenes can come out: the set must skip repeats, and cannot hold three prompts.
    monkeypatch.setattr(world_quality_prompts, "sample_scene",
                        lambda seed, split: sample_scene(seed % 2, split=split))
    monkeypatch.setattr(world_quality_prompts, "clip_seed", lambda seed, index: index)
    assert len({item.prompt for item in heldout_prompts(2, seed=0)}) == 2
    with pytest.raises(ConfigError, match="could not draw 3"):
        heldout_prompts(3, seed=0)
    with pytest.raises(ConfigError, match="positive"):
        heldout_prompts(0, seed=0)


def test_seam_ratio_of_a_video_with_known_steps() -> None:
    # Grey rises 1 level per frame inside chunks and jumps 9 levels at each 33-frame boundary.
    steps = np.ones(98)
    steps[[32, 65]] = 9
    measures = measure(grey_video(20 + np.concatenate([[0], np.cumsum(steps)])), chunk=33)
    expected = (9 / 255 + SEAM_FLOOR) / (1 / 255 + SEAM_FLOOR)
    assert measures.chunk_frames == 33 and measures.frames == 99
    assert measures.seam_ratio == pytest.approx(expected, rel=1e-9)
    assert measures.seam_max == pytest.approx(expected, rel=1e-9)  # every boundary is the same


def test_drift_of_a_brightness_ramp_and_its_floored_ratio() -> None:
    levels = np.linspace(100, 140, 100).round()
    generated = measure(grey_video(levels), chunk=33)
    edge = 15  # 15% of 100 frames
    expected = abs(levels[:edge].mean() - levels[-edge:].mean()) / 255
    assert generated.drift["brightness"] == pytest.approx(expected, abs=1e-6)
    assert generated.drift["saturation"] == 0.0  # grey has no saturation
    still = measure(grey_video(np.full(100, 120)), chunk=33)
    assert still.drift["brightness"] == 0.0
    # A still reference would make a plain ratio infinite; the floor makes it drift / floor.
    ratios = drift_ratios(generated, still)
    assert ratios["brightness"] == pytest.approx(expected / DRIFT_FLOORS["brightness"])
    assert ratios["saturation"] == 1.0  # both below the floor: equal
    moving = dataclasses.replace(still, drift={**still.drift, "brightness": 2 * expected})
    assert drift_ratios(generated, moving)["brightness"] == pytest.approx(0.5)  # above the floor: a plain ratio


def test_meter_refuses_uneven_chunks_and_non_rgb_frames() -> None:
    meter = WorldVideoMeter(PROMPT, 24, expected_frames=40)
    with pytest.raises(ValueError, match="uint8 RGB"):
        meter.push(np.zeros((4, 32, 32), np.uint8))
    meter.push(grey_video(np.full(10, 50)))
    meter.push(grey_video(np.full(20, 50)))
    with pytest.raises(ValueError, match="same length"):
        meter.finish()


def test_the_worlds_own_clip_as_the_generated_video_scores_ratio_one(tmp_path: Path) -> None:
    seen = []
    report = run_world_quality(
        dataclasses.replace(settings(tmp_path, "same"), num_prompts=2),
        sources={"same": rendered_source}, on_video=lambda label, item, measures, ratios: seen.append(label))
    assert seen == ["rendered", "same", "rendered", "same"]
    (model,) = report.models
    for video, reference in zip(model.videos, report.rendered):
        assert video.drift_ratio == {"color": 1.0, "brightness": 1.0, "saturation": 1.0, "sharpness": 1.0}
        assert video.measures == reference
        assert video.measures.frames == 48
        assert video.measures.chunk_frames == plan_frames(small_config()).chunk_pixel_frames  # the engine's chunks
        assert video.measures.adherence >= 0.9
        assert 0.8 < video.measures.seam_ratio < 1.25  # the world has no seams
        # every judged object-second of a clean render reads as its own shape
        assert video.measures.shapes_seen and all(set(seen) <= {shape} for shape, seen in
                                                  video.measures.shapes_seen.items())
    assert model.passed
    written = json.loads((tmp_path / "out" / "world_quality.json").read_text())
    assert [item["prompt"] for item in written["prompts"]] == [item.prompt for item in heldout_prompts(2, 0)]
    assert written["models"][0]["videos"][1]["drift_ratio"]["color"] == 1.0
    assert written["models"][0]["shapes_seen"] == written["rendered"]["shapes_seen"] != {}
    assert written["models"][0]["videos"][0]["shapes_seen"] == written["prompts"][0]["rendered"]["shapes_seen"]
    assert written["models"][0]["color_errors"] == written["rendered"]["color_errors"]
    assert set(written["rendered"]["color_errors"]) == {"extra", "missing"}


def seamed_source(item, config):
    """The world's clip with every other chunk brightened by 40 levels: a visible jump at every boundary."""
    for index, chunk in enumerate(rendered_source(item, config)):
        yield np.clip(chunk.astype(np.int16) + 40 * (index % 2), 0, 255).astype(np.uint8)


def test_compare_gives_one_row_per_label_with_its_own_verdict(tmp_path: Path) -> None:
    report = run_world_quality(settings(tmp_path, "full", "seamed"),
                               sources={"full": rendered_source, "seamed": seamed_source})
    full, seamed = report.models
    assert full.checks == {"adherence": True, "drift": True, "seams": True}
    assert seamed.checks["seams"] is False and seamed.mean("seam_ratio") > 3
    data = report.to_dict(with_videos=False)
    assert [row["label"] for row in data["models"]] == ["full", "seamed"]
    assert [row["pass"] for row in data["models"]] == [True, False] and "videos" not in data["models"][0]
    rows = world_table_rows(report)
    assert [row["label"] for row in rows] == ["rendered", "full", "seamed"]
    assert rows[2]["result"].startswith("FAIL") and "seams" in rows[2]["result"]


NO_DRIFT = {"color": 0.0, "brightness": 0.0, "saturation": 0.0, "sharpness": 0.0}


def measures_seeing(color_errors: dict[str, dict[str, int]] | None = None,
                    **shapes_seen: dict[str, dict[str, int]]) -> VideoMeasures:
    """Hand-made measures; shapes_seen and color_errors are left to their defaults when not given."""
    return VideoMeasures(frames=48, adherence=0.5, color_adherence=1.0, shape_adherence=0.5, motion_adherence=1.0,
                         failed_seconds=(1,), drift=dict(NO_DRIFT), sharpness_mean=1.0, seam_ratio=1.0, seam_max=1.0,
                         chunk_frames=33, **({"shapes_seen": shapes_seen} if shapes_seen else {}),
                         **({"color_errors": color_errors} if color_errors is not None else {}))


def test_model_and_rendered_shapes_seen_sum_their_videos() -> None:
    clips = (measures_seeing(diamond={"diamond": 1, "circle": 1}, triangle={"none": 2}),
             measures_seeing(circle={"circle": 2}, diamond={"circle": 2}), measures_seeing())
    model = ModelSummary("vae", "default", tuple(VideoResult(index, PROMPT, 0, clip, dict(NO_DRIFT), None)
                                                 for index, clip in enumerate(clips)))
    expected = {"circle": {"circle": 2}, "diamond": {"circle": 3, "diamond": 1}, "triangle": {"none": 2}}
    data = model.to_dict(with_videos=False)
    assert data["shapes_seen"] == expected
    assert list(data["shapes_seen"]) == ["circle", "diamond", "triangle"]
    assert list(data["shapes_seen"]["diamond"]) == ["circle", "diamond"]
    report = WorldQualityReport(settings={}, prompts=(), rendered=clips, models=(model,))
    assert report.rendered_summary()["shapes_seen"] == expected
    assert clips[2].shapes_seen == {}  # measures built without the field (the default) add nothing


def test_model_and_rendered_color_errors_sum_their_videos() -> None:
    clips = (measures_seeing({"missing": {"red": 2}, "extra": {"purple": 1}}),
             measures_seeing({"missing": {"red": 1, "blue": 3}, "extra": {}}), measures_seeing())
    model = ModelSummary("m", "default", tuple(VideoResult(index, PROMPT, 0, clip, dict(NO_DRIFT), None)
                                               for index, clip in enumerate(clips)))
    expected = {"extra": {"purple": 1}, "missing": {"blue": 3, "red": 3}}
    summed = model.to_dict(with_videos=False)["color_errors"]
    assert summed == expected
    assert list(summed) == ["extra", "missing"] and list(summed["missing"]) == ["blue", "red"]
    report = WorldQualityReport(settings={}, prompts=(), rendered=clips, models=(model,))
    assert report.rendered_summary()["color_errors"] == expected


def test_bad_settings_fail_before_any_work(tmp_path: Path) -> None:
    def never(item, config):
        raise AssertionError("no video should be made")

    for bad, message in [
        (settings(tmp_path, "rendered"), "not 'rendered'"),
        (settings(tmp_path, "a", "a"), "must differ"),
        (settings(tmp_path, "a b"), "letters, digits"),
        (dataclasses.replace(settings(tmp_path, "a"), config=small_config(**{"video.fps": 12.0})), "24 fps"),
        (dataclasses.replace(settings(tmp_path, "a"), config=small_config(**{"video.seconds": 0.5})), "at least 1"),
    ]:
        with pytest.raises(ConfigError, match=message):
            run_world_quality(bad, sources={label: never for label in ("a", "rendered")})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "world_quality.json").write_text("{}")
    with pytest.raises(OutputPathError, match="--overwrite"):
        run_world_quality(settings(tmp_path, "a"), sources={"a": never})

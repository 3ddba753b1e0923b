"""Happy paths with the fake engine: files, sidecars, seeds, --json, --from, flag precedence, media inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helios_cli.app import app
from helios_core.config import DEFAULT_NEGATIVE_PROMPT
from helios_core.presets import load_preset
from helios_core.request import PromptSegment
from helios_core.video import probe_video, read_video_metadata, write_video

SMALL = ["--height", "32", "--width", "32", "--frames", "40"]


def last_json_line(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def test_generate_writes_video_and_sidecar(runner, fake_engine, in_tmp: Path) -> None:
    result = runner.invoke(app, ["generate", "A fox, running!", *SMALL, "--seed", "11", "--quiet"])
    assert result.exit_code == 0, result.output
    video = in_tmp / "outputs" / "a-fox-running-11.mp4"
    info = probe_video(video)
    assert (info.num_frames, info.width, info.height, info.fps) == (40, 32, 32, 24.0)
    sidecar = json.loads(video.with_suffix(".json").read_text())
    assert sidecar["completed"] is True
    assert sidecar["seed"] == 11
    assert sidecar["prompt"] == "A fox, running!"
    assert sidecar["frames_written"] == 40
    assert len(sidecar["timings"]["per_chunk_fps"]) == 2
    assert "seed 11" in result.stdout
    assert "chunk 2/2" in result.stdout  # plain progress lines when not on a terminal
    tags = read_video_metadata(video)
    assert tags["title"] == "A fox, running!"
    assert json.loads(tags["comment"])["seed"] == 11
    assert len(fake_engine.loads) == 1


def test_random_seed_is_printed_and_recorded(runner, fake_engine, in_tmp: Path) -> None:
    result = runner.invoke(app, ["generate", "a fox", *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    data = last_json_line(result.stdout)
    seed = fake_engine.generated[0].seed
    assert data["seed"] == seed
    assert f"seed {seed}" in result.stderr  # human output goes to stderr in --json mode
    assert Path(data["output"]).name == f"a-fox-{seed}.mp4"
    assert json.loads(Path(data["sidecar"]).read_text())["seed"] == seed


def test_json_mode_stdout_is_only_json(runner, fake_engine, in_tmp: Path) -> None:
    result = runner.invoke(app, ["generate", "a fox", *SMALL, "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["status"] == "completed" and data["completed"] is True
    assert data["frames"] == 40 and data["num_chunks"] == 2


def test_flag_precedence_exact_resolved_config(runner, fake_engine, in_tmp: Path) -> None:
    args = [
        "generate", "a fox", "--preset", "mid",
        "--set", "sampler.steps=[5,5,5]", "--set", "video.height=64", "--set", "output.crf=30",
        "--set", "video.num_frames=66",
        "--steps", "7", "--height", "32", "--width", "48", "--seconds", "2", "--fps", "12",
        "--guidance", "3.5", "--negative-prompt", "blurry", "--device", "cpu", "--dtype", "fp32",
        "--compile", "--offload", "group", "--anti-drift", "--seed", "1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = load_preset("mid").with_values(
        {
            "sampler.steps": [7, 7, 7],  # flag beats --set
            "video.height": 32,  # flag beats --set
            "video.width": 48,
            "output.crf": 30,  # --set beats the preset default
            "video.seconds": 2.0,
            "video.num_frames": None,  # --seconds clears the --set frame count
            "video.fps": 12.0,
            "sampler.guidance_scale": 3.5,
            "prompt.negative_prompt": "blurry",
            "runtime.device": "cpu",
            "runtime.dtype": "fp32",
            "runtime.compile": True,
            "runtime.offload": "group",
            "drift.anti_drift": True,
        }
    )
    assert fake_engine.generated[0].config == expected
    assert fake_engine.loads[0][1] == expected.runtime


def test_preset_values_survive_without_flags(runner, fake_engine, in_tmp: Path) -> None:
    result = runner.invoke(app, ["generate", "a fox", "--preset", "base", *SMALL, "--seed", "1"])
    assert result.exit_code == 0, result.output
    config = fake_engine.generated[0].config
    assert config.sampler.kind == "flow_unipc" and config.sampler.steps == (50,)
    assert config.sampler.guidance_scale == 5.0
    assert config.prompt.negative_prompt == DEFAULT_NEGATIVE_PROMPT


def test_steps_follow_a_sampler_changed_by_set(runner, fake_engine, in_tmp: Path) -> None:
    args = ["generate", "a fox", "--set", "sampler.kind=flow_unipc", "--steps", "30", *SMALL, "--seed", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert fake_engine.generated[0].config.sampler.steps == (30,)


def test_from_sidecar_reproduces_the_request(runner, fake_engine, in_tmp: Path) -> None:
    first = runner.invoke(app, ["generate", "a fox", "--preset", "mid", "--steps", "3,2,1", *SMALL,
                                "--seed", "5", "-o", "first.mp4"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["generate", "--from", "first.json", "-o", "second.mp4"])
    assert again.exit_code == 0, again.output
    original, reproduced = fake_engine.generated
    assert reproduced.config == original.config
    assert (reproduced.seed, reproduced.prompt, reproduced.mode) == (original.seed, original.prompt, original.mode)
    assert json.loads((in_tmp / "second.json").read_text())["config"] == original.config.to_dict()


def test_from_sidecar_with_overrides(runner, fake_engine, in_tmp: Path) -> None:
    assert runner.invoke(app, ["generate", "a fox", *SMALL, "--seed", "5", "-o", "a.mp4"]).exit_code == 0
    result = runner.invoke(app, ["generate", "--from", "a.json", "--seed", "6", "--fps", "12", "-o", "b.mp4"])
    assert result.exit_code == 0, result.output
    request = fake_engine.generated[1]
    assert request.seed == 6 and request.config.video.fps == 12.0 and request.prompt == "a fox"


def test_schedule_reaches_the_engine(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "story.txt").write_text("# a story\n0:00 a fox sleeps\n1.0 the fox wakes up\n")
    result = runner.invoke(app, ["generate", "--schedule", "story.txt", *SMALL, "--seed", "2"])
    assert result.exit_code == 0, result.output
    request = fake_engine.generated[0]
    assert request.schedule == (PromptSegment(0.0, "a fox sleeps"), PromptSegment(1.0, "the fox wakes up"))
    assert (in_tmp / "outputs" / "a-fox-sleeps-2.mp4").is_file()


def test_schedule_past_the_end_is_refused(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "story.txt").write_text("0:00 a fox sleeps\n0:30 the fox wakes up\n")
    result = runner.invoke(app, ["generate", "--schedule", "story.txt", *SMALL])
    assert result.exit_code == 2 and "after the end" in result.stderr
    assert fake_engine.loads == []


def test_animate_passes_a_resized_image(runner, fake_engine, in_tmp: Path) -> None:
    Image.fromarray(np.full((50, 80, 3), 200, dtype=np.uint8)).save(in_tmp / "photo.png")
    result = runner.invoke(app, ["animate", "photo.png", "waves", *SMALL, "--seed", "1"])
    assert result.exit_code == 0, result.output
    request = fake_engine.generated[0]
    assert request.mode == "i2v" and request.image.shape == (32, 32, 3)
    assert int(request.image.mean()) == 200
    sidecar = json.loads((in_tmp / "outputs" / "waves-1.json").read_text())
    assert sidecar["mode"] == "i2v" and sidecar["inputs"]["image"] == str(in_tmp / "photo.png")


def test_extend_passes_first_frame_and_tail(runner, fake_engine, in_tmp: Path) -> None:
    # 150 frames at 24 fps, each frame's shade is its index (mod 250): the CLI keeps frame 0 (the anchor) and
    # the last 3 chunks (99 frames) that the history can hold.
    frames = np.stack([np.full((32, 32, 3), i % 250, dtype=np.uint8) for i in range(150)])
    write_video(in_tmp / "clip.mp4", frames, fps=24, crf=1)
    result = runner.invoke(app, ["extend", "clip.mp4", "the car drives on", *SMALL, "--seed", "1"])
    assert result.exit_code == 0, result.output
    request = fake_engine.generated[0]
    assert request.mode == "v2v" and request.video.shape == (100, 32, 32, 3)
    shades = request.video.reshape(100, -1).mean(axis=1)
    assert abs(shades[0] - 0) < 3 and abs(shades[1] - 51) < 3 and abs(shades[-1] - 149) < 3
    assert request.video_fps == 24.0


def test_output_folder_gets_default_name(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "videos").mkdir()
    result = runner.invoke(app, ["generate", "a fox", *SMALL, "--seed", "4", "-o", "videos"])
    assert result.exit_code == 0, result.output
    assert (in_tmp / "videos" / "a-fox-4.mp4").is_file()


def test_overwrite_replaces(runner, fake_engine, in_tmp: Path) -> None:
    args = ["generate", "a fox", *SMALL, "--seed", "4", "-o", "x.mp4"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args).exit_code == 2
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert len(fake_engine.generated) == 2


@pytest.mark.parametrize("args", [["--help"], ["generate", "--help"], ["animate", "--help"], ["extend", "--help"]])
def test_help_lists_shared_options(runner, args) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    if args[0] != "--help":
        for flag in ("--seconds", "--frames", "--seed", "--preset", "--set", "--model", "--schedule", "--json"):
            assert flag in result.stdout


def test_presets_lists_and_keys(runner) -> None:
    listed = runner.invoke(app, ["presets"])
    assert listed.exit_code == 0
    for name in ("base", "mid", "distilled"):
        assert name in listed.stdout
    keys = runner.invoke(app, ["presets", "--keys"])
    assert "sampler.steps=[1,1,1]" in keys.stdout and "video.num_frames=null" in keys.stdout


def test_from_sidecar_reuses_the_recorded_image(runner, fake_engine, in_tmp: Path) -> None:
    Image.fromarray(np.full((32, 32, 3), 90, dtype=np.uint8)).save(in_tmp / "photo.png")
    assert runner.invoke(app, ["animate", "photo.png", "waves", *SMALL, "--seed", "1", "-o", "a.mp4"]).exit_code == 0
    result = runner.invoke(app, ["generate", "--from", "a.json", "-o", "b.mp4"])
    assert result.exit_code == 0, result.output
    original, reproduced = fake_engine.generated
    assert reproduced.mode == "i2v" and np.array_equal(reproduced.image, original.image)
    assert reproduced.config == original.config and reproduced.seed == 1

"""Every bad input gets exit code 2 and ONE `error:` line on stderr, with no traceback, before the engine loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helios_cli.app import app
from helios_core.video import write_video

SMALL = ["--height", "32", "--width", "32", "--frames", "40", "--seed", "7"]


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def short_video_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A valid 10-frame video (too short to extend), encoded once for the whole module."""
    path = tmp_path_factory.mktemp("media") / "short.mp4"
    write_video(path, np.zeros((10, 32, 32, 3), dtype=np.uint8), fps=24)
    return path.read_bytes()


@pytest.fixture
def media(in_tmp: Path, short_video_bytes: bytes) -> None:
    (in_tmp / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (in_tmp / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated garbage")
    (in_tmp / "short.mp4").write_bytes(short_video_bytes)
    (in_tmp / "existing.mp4").write_bytes(b"keep me")
    (in_tmp / "a_file").write_text("not a folder")
    (in_tmp / "bad_schedule.txt").write_text("0:00 a fox\nlater the fox jumps\n")
    (in_tmp / "not_sidecar.json").write_text('{"hello": 1}')
    (in_tmp / "unsafe.jsonl").write_text('{"prompt": "a fox", "output": "../escape"}\n')


CASES = [
    (["generate", "", *SMALL], ["prompt is empty"]),
    (["generate", *SMALL], ["missing PROMPT"]),
    (["generate", "a fox", "--seconds", "0"], ["--seconds must be positive"]),
    (["generate", "a fox", "--seconds", "-3"], ["--seconds must be positive"]),
    (["generate", "a fox", "--seconds", "100000"], ["limit"]),
    (["generate", "a fox", "--frames", "0"], ["--frames must be positive"]),
    (["generate", "a fox", "--seconds", "2", "--frames", "30"], ["--seconds or --frames"]),
    (["generate", "a fox", "--height", "30", "--width", "32", "--frames", "40"], ["multiple of 16"]),
    (["generate", "a fox", "--height", "-32", *SMALL[2:]], ["size must be positive"]),
    (["generate", "a fox", "--height", "abc"], ["--height", "integer"]),
    (["generate", "a fox", "--preset", "nope"], ["unknown preset 'nope'"]),
    (["generate", "a fox", "--set", "sampler.stepz=[1,1,1]"], ["unknown config key 'sampler.stepz'"]),
    (["generate", "a fox", "--set", "sampler.steps=abc"], ["sampler.steps"]),
    (["generate", "a fox", "--set", "video.height=tall"], ["video.height", "integer"]),
    (["generate", "a fox", "--set", "novalue"], ["key=value"]),
    (["generate", "a fox", "--set", "runtime.attention=flash9", *SMALL], ["runtime.attention"]),
    (["generate", "a fox", "--set", "runtime.vae_decode=tiled", *SMALL], ["runtime.vae_decode"]),
    (["generate", "a fox", "--steps", "0"], ["--steps"]),
    (["generate", "a fox", "--steps", "4,4"], ["3 stage"]),
    (["generate", "a fox", "--crf", "0", *SMALL], ["--crf"]),
    (["generate", "a fox", "--crf", "60", *SMALL], ["crf"]),
    (["generate", "a fox", "--device", "tpu"], ["--device"]),
    (["generate", "a fox", "--dtype", "fp8"], ["--dtype"]),
    (["generate", "a fox", "--offload", "everything"], ["--offload"]),
    (["generate", "a fox", "--seed", "-1"], ["--seed"]),
    (["generate", "a fox", "--unknown-flag"], ["--unknown-flag"]),
    (["generate", "a fox", "--model", "no/such/model", *SMALL], ["no/such/model"]),
    (["generate", "a fox", "-o", "existing.mp4", *SMALL], ["existing.mp4", "--overwrite"]),
    (["generate", "a fox", "-o", "video.avi", *SMALL], [".mp4"]),
    (["generate", "a fox", "-o", "a_file/x.mp4", *SMALL], ["a_file"]),
    (["generate", "--schedule", "missing.txt", *SMALL], ["missing.txt"]),
    (["generate", "--schedule", "bad_schedule.txt", *SMALL], ["bad_schedule.txt line 2"]),
    (["generate", "a fox", "--schedule", "bad_schedule.txt", *SMALL], ["not both"]),
    (["generate", "--from", "missing.json"], ["missing.json"]),
    (["generate", "--from", "not_sidecar.json"], ["not a Helios sidecar"]),
    (["generate", "--prompts", "missing.txt"], ["missing.txt"]),
    (["generate", "--prompts", "unsafe.jsonl", *SMALL], ["unsafe.jsonl line 1", "../escape"]),
    (["generate", "a fox", "--prompts", "unsafe.jsonl"], ["--prompts"]),
    (["animate", "missing.jpg", "a fox", *SMALL], ["missing.jpg", "not found"]),
    (["animate", "corrupt.jpg", "a fox", *SMALL], ["corrupt.jpg"]),
    (["animate", "corrupt.jpg", *SMALL], ["missing PROMPT"]),
    (["extend", "missing.mp4", "a fox", *SMALL], ["missing.mp4", "not found"]),
    (["extend", "corrupt.mp4", "a fox", *SMALL], ["corrupt.mp4"]),
    (["extend", "short.mp4", "a fox", *SMALL], ["short.mp4", "too short"]),
    (["train", "--stage", "base", "x.yaml"], ["No such command", "x.yaml"]),
    (["train", "--stage", "nope", "--model", ".", "--data", ".", "--out", "run"], ["unknown training stage"]),
    (["data", "prepare", "missing.jsonl", "--out", "d", "--model", "."], ["missing.jsonl", "does not exist"]),
    (["bench", "quality", "x.mp4"], ["x.mp4", "does not exist"]),
    (["bench", "quality", "corrupt.mp4"], ["corrupt.mp4"]),
    (["bench", "speed"], ["no CUDA GPU", "--tiny"]),
]


@pytest.mark.parametrize(("args", "fragments"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_is_one_line_exit_2_before_loading(args, fragments, runner, fake_engine, media) -> None:
    result = runner.invoke(app, args)
    assert_one_line_error(result, *fragments)
    assert fake_engine.loads == []
    assert fake_engine.generated == []


def test_existing_output_is_untouched(runner, fake_engine, media, in_tmp: Path) -> None:
    result = runner.invoke(app, ["generate", "a fox", "-o", "existing.mp4", *SMALL])
    assert_one_line_error(result, "already exists")
    assert (in_tmp / "existing.mp4").read_bytes() == b"keep me"


def test_existing_sidecar_needs_overwrite(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "clip.json").write_text(json.dumps({"mine": True}))
    result = runner.invoke(app, ["generate", "a fox", "-o", "clip.mp4", *SMALL])
    assert_one_line_error(result, "clip.json", "--overwrite")
    assert json.loads((in_tmp / "clip.json").read_text()) == {"mine": True}


def test_helios_debug_reraises_user_errors(runner, fake_engine, in_tmp: Path, monkeypatch) -> None:
    monkeypatch.setenv("HELIOS_DEBUG", "1")
    result = runner.invoke(app, ["generate", "a fox", "--preset", "nope"])
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "ConfigError"


def test_model_from_environment_is_checked(runner, fake_engine, in_tmp: Path, monkeypatch) -> None:
    monkeypatch.setenv("HELIOS_MODEL", "env/model/folder")
    result = runner.invoke(app, ["generate", "a fox", *SMALL])
    assert_one_line_error(result, "env/model/folder")
    assert fake_engine.loads == []

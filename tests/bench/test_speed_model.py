"""`helios bench speed --model`: one real `helios generate` child timed end to end, its option checks (which must
refuse before any child starts), the child-failure message, and the report built from a canned sidecar.

Only the first test spawns a real generate (about 10-15 s on a 2-core CPU: the child's imports dominate); every other
test replaces `time_generate` or runs a trivial child.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helios_cli.app import app
from helios_core.bench import speed_model
from helios_core.bench.speed_model import (
    DEFAULT_PROMPT, GenerateFailed, ModelSpeedSettings, model_speed_report, model_table_rows, time_generate,
)

SIDECAR = {  # the keys `helios generate` writes that the bench reads (helios_core.runner.sidecar_dict)
    "prompt": "a red circle", "seed": 3, "frames_written": 48, "fps": 24.0, "width": 256, "height": 128,
    "chunks_written": 2, "config": {"preset": "default", "runtime": {"device": "cpu"}},
    "timings": {"total_seconds": 1.5, "end_to_end_fps": 32.0, "per_chunk": [{"total": 0.5}, {"total": 0.9}, {}],
                "per_chunk_fps": [48.0, 20.0, None]},
}


def test_default_model_one_second_real_child(monkeypatch):
    # HELIOS_MODEL must not leak into 'default' (the child would load that folder, or fail on this bogus one);
    # OMP_NUM_THREADS=1 keeps the child quick on a busy 2-core box and is what the report's torch_threads reads.
    monkeypatch.setenv("HELIOS_MODEL", "/nonexistent/helios-model")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    result = CliRunner().invoke(app, ["bench", "speed", "--model", "default", "--seconds", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert "Helios speed, real model" in result.stdout and "loading the embedded default model" in result.stdout
    assert report["model"] == "default" and report["preset"] == "default" and report["device"] == "cpu"
    assert report["frames"] == 24 and report["fps"] == 24.0 and report["video_seconds"] == 1.0  # request trim
    assert (report["width"], report["height"]) == (256, 128)
    assert report["wall_seconds"] >= report["generation_seconds"] > 0
    assert report["startup_seconds"] == report["wall_seconds"] - report["generation_seconds"]
    assert report["realtime_factor"] == report["video_seconds"] / report["wall_seconds"]
    assert report["faster_than_real_time"] == (report["wall_seconds"] < report["video_seconds"])
    assert report["chunk_fps_median"] > 0 and report["torch_threads"] == 1 and report["cpu_count"] >= 1


def _no_child(*args, **kwargs):
    raise AssertionError("helios generate must not run")


@pytest.mark.parametrize(("args", "flag"), [
    (["--tiny"], "--tiny"), (["--compile"], "--compile"), (["--no-diffusers"], "--no-diffusers"),
    (["--height", "128"], "--height"), (["--width", "256"], "--width"), (["--steps", "1,1,1"], "--steps"),
    (["--frames", "24"], "--frames"), (["--repeats", "2"], "--repeats"),
    (["--preset", "distilled"], "--preset distilled"),
])
def test_random_bench_options_conflict_with_model(monkeypatch, args, flag):
    monkeypatch.setattr(speed_model, "time_generate", _no_child)
    result = CliRunner().invoke(app, ["bench", "speed", "--model", "default", *args])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and flag in line and "--model" in line


@pytest.mark.parametrize(("args", "expected"), [
    (["--seconds", "5"], "--seconds only apply with --model"),
    (["--model", "default", "--seconds", "0"], "--seconds must be positive"),
    (["--model", "default", "--set", "video.nope=1"], "video.nope"),
    (["--model", "/nonexistent/helios-model"], "no such model folder"),
    (["--model", "=/some/path"], "LABEL=MODEL_PATH"),
])
def test_bad_options_fail_in_one_line_before_any_child(monkeypatch, args, expected):
    monkeypatch.setattr(speed_model, "time_generate", _no_child)
    result = CliRunner().invoke(app, ["bench", "speed", *args])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and expected in line


def test_command_environment_and_report_without_a_real_child(monkeypatch, tmp_path):
    """The model's own preset is accepted; a labelled folder goes to --model; --set items pass through; the device
    defaults to generate's 'auto', not the random bench's 'cuda'."""
    model = tmp_path / "my-model"
    model.mkdir()
    seen = {}

    def fake_time_generate(command, env, stderr_path, echo=None):
        seen.update(command=command, env=env)
        output = Path(command[command.index("--output") + 1])
        output.with_suffix(".json").write_text(json.dumps(SIDECAR))
        echo("wrote it")
        return 2.5

    monkeypatch.setenv("HELIOS_MODEL", str(model))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(speed_model, "time_generate", fake_time_generate)
    result = CliRunner().invoke(app, ["bench", "speed", "--model", f"mine={model}", "--preset", "distilled",
                                      "--seconds", "2", "--set", "drift.anti_drift=true", "--seed", "3"])
    assert result.exit_code == 0, result.output
    command = seen["command"]
    assert command[:5] == [sys.executable, "-m", "helios_cli", "generate", DEFAULT_PROMPT]
    for flag, value in (("--seconds", "2"), ("--seed", "3"), ("--device", "auto"), ("--model", str(model)),
                        ("--set", "drift.anti_drift=true")):
        assert command[command.index(flag) + 1] == value
    assert seen["env"]["HELIOS_MODEL"] == str(model)  # a folder model keeps the environment as it is
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"] == "mine" and report["wall_seconds"] == 2.5 and report["torch_threads"] is None
    assert "wrote it" in result.stdout and "torch default" in result.stdout


def test_child_failure_reports_its_last_stderr_line(tmp_path):
    script = "import sys; print('working'); sys.stderr.write('a warning\\nerror: model folder x is broken\\n\\n'); " \
             "sys.exit(2)"
    echoed = []
    with pytest.raises(GenerateFailed) as caught:
        time_generate([sys.executable, "-c", script], {}, tmp_path / "stderr.txt", echoed.append)
    assert str(caught.value) == "helios generate exited with code 2: error: model folder x is broken"
    assert caught.value.exit_code == 2 and echoed == ["working"]


def test_child_failure_through_the_cli_is_one_line(monkeypatch):
    def failing(command, env, stderr_path, echo=None):
        raise GenerateFailed("helios generate exited with code 1: RuntimeError: out of memory", 1)

    monkeypatch.setattr(speed_model, "time_generate", failing)
    result = CliRunner().invoke(app, ["bench", "speed", "--model", "default", "--seconds", "1"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["error: helios generate exited with code 1: RuntimeError: out of "
                                                  "memory"]


def test_report_from_a_canned_sidecar():
    report = model_speed_report(SIDECAR, wall_seconds=4.0, label="default", cpus=2, threads=None)
    assert report["video_seconds"] == 2.0 and report["frames"] == 48 and report["chunks"] == 2
    assert report["generation_seconds"] == 1.5 and report["startup_seconds"] == 2.5
    assert report["realtime_factor"] == 0.5 and report["faster_than_real_time"] is False
    assert report["chunk_fps_median"] == 34.0  # the None (an infinite chunk FPS in the sidecar) is left out
    assert (report["preset"], report["device"], report["cpu_count"], report["seed"]) == ("default", "cpu", 2, 3)
    json.dumps(report, allow_nan=False)
    fast = model_speed_report(SIDECAR, wall_seconds=1.6, label="x", cpus=2, threads=1)
    assert fast["faster_than_real_time"] is True and fast["realtime_factor"] == 2.0 / 1.6
    rows = dict(model_table_rows(fast))
    assert rows["real-time factor"] == "1.25" and rows["size"] == "256x128 at 24 fps" and rows["torch threads"] == "1"


def test_settings_refuse_empty_prompt():
    with pytest.raises(Exception, match="--prompt must not be empty"):
        ModelSpeedSettings(model=None, label="default", prompt="  ").validate()

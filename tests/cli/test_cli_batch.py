"""`helios generate --prompts FILE`: one load, resume, failures that do not stop the batch, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from helios_cli.app import app
from helios_core.video import probe_video

SMALL = ["--height", "32", "--width", "32", "--frames", "40", "--seed", "9"]


def test_plain_text_batch_loads_once_and_writes_each(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "jobs.txt").write_text("# my batch\na fox running\n\na cat sleeping\n")
    result = runner.invoke(app, ["generate", "--prompts", "jobs.txt", *SMALL, "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(fake_engine.loads) == 1
    for name in ("0001-a-fox-running.mp4", "0002-a-cat-sleeping.mp4"):
        assert probe_video(in_tmp / "outputs" / name).num_frames == 40
    assert "2 done, 0 skipped" in result.stdout


def test_failed_item_does_not_stop_the_batch_and_resume_skips_done(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "jobs.txt").write_text("a fox\nboom goes the engine\na cat\n")
    first = runner.invoke(app, ["generate", "--prompts", "jobs.txt", *SMALL, "-o", "out", "--json"])
    assert first.exit_code == 1, first.output
    out = in_tmp / "out"
    assert (out / "0001-a-fox.mp4").is_file() and (out / "0003-a-cat.mp4").is_file()
    assert not (out / "0002-boom-goes-the-engine.mp4").exists()
    statuses = [json.loads(line)["status"] for line in first.stdout.splitlines() if line.strip()]
    assert statuses == ["completed", "failed", "completed"]
    assert "2 done, 0 skipped (already there), 1 failed" in first.stderr

    fake_engine.generated.clear()
    again = runner.invoke(app, ["generate", "--prompts", "jobs.txt", *SMALL, "-o", "out", "--json"])
    assert again.exit_code == 1
    # Only the unfinished item ran again.
    assert [r.prompt for r in fake_engine.generated] == ["boom goes the engine"]
    statuses = [json.loads(line)["status"] for line in again.stdout.splitlines() if line.strip()]
    assert statuses == ["skipped", "skipped", "failed"]


def test_resume_replaces_a_crash_leftover_partial(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "jobs.txt").write_text("a fox\n")
    (in_tmp / "outputs").mkdir()
    (in_tmp / "outputs" / "0001-a-fox.partial.mp4").write_bytes(b"half a video")
    result = runner.invoke(app, ["generate", "--prompts", "jobs.txt", *SMALL])
    assert result.exit_code == 0, result.output
    assert probe_video(in_tmp / "outputs" / "0001-a-fox.mp4").num_frames == 40
    assert not (in_tmp / "outputs" / "0001-a-fox.partial.mp4").exists()


def test_jsonl_items_carry_their_own_options(runner, fake_engine, in_tmp: Path) -> None:
    lines = [
        {"prompt": "a fox", "seed": 3, "output": "fox", "frames": 33},
        {"prompt": "a cat", "seconds": 2, "set": {"sampler.guidance_scale": 2.0}},
    ]
    (in_tmp / "jobs.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = runner.invoke(app, ["generate", "--prompts", "jobs.jsonl", *SMALL])
    assert result.exit_code == 0, result.output
    fox, cat = fake_engine.generated
    assert fox.seed == 3 and fox.config.video.num_frames == 33
    assert cat.seed == 9 and cat.config.video.seconds == 2.0 and cat.config.video.num_frames is None
    assert cat.config.sampler.guidance_scale == 2.0
    assert probe_video(in_tmp / "outputs" / "fox.mp4").num_frames == 33
    assert json.loads((in_tmp / "outputs" / "0002-a-cat.json").read_text())["batch"]["line"] == 2


def test_invalid_item_fails_alone_before_loading(runner, fake_engine, in_tmp: Path) -> None:
    lines = [{"prompt": "a fox"}, {"prompt": "a cat", "image": "missing.png"}, {"prompt": "a dog", "set": {"x.y": 1}}]
    (in_tmp / "jobs.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = runner.invoke(app, ["generate", "--prompts", "jobs.jsonl", *SMALL])
    assert result.exit_code == 1
    assert "missing.png" in result.output and "line 2" in result.output
    assert "x.y" in result.output and "line 3" in result.output
    assert [r.prompt for r in fake_engine.generated] == ["a fox"]
    assert len(fake_engine.loads) == 1
    # Both invalid items were found by the checks that run before the model loads.
    assert len(fake_engine.checks) == 1


def test_unsafe_output_name_stops_everything(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "jobs.jsonl").write_text(json.dumps({"prompt": "a fox"}) + "\n" + json.dumps(
        {"prompt": "a cat", "output": "/etc/passwd"}) + "\n")
    result = runner.invoke(app, ["generate", "--prompts", "jobs.jsonl", *SMALL])
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "Traceback" not in result.output
    assert fake_engine.loads == [] and not (in_tmp / "outputs").exists()


def test_output_must_be_a_folder_in_batch_mode(runner, fake_engine, in_tmp: Path) -> None:
    (in_tmp / "jobs.txt").write_text("a fox\n")
    result = runner.invoke(app, ["generate", "--prompts", "jobs.txt", "-o", "one.mp4"])
    assert result.exit_code == 2 and "folder" in result.stderr

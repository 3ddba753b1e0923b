"""`helios data prepare` -> `helios train` (killed and resumed) -> `helios train export` -> `helios generate`."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from helios_cli.app import app
from helios_core.video import write_video


def _last_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def _square_video(path, seed: int):
    rng = np.random.default_rng(seed)
    frames = np.zeros((40, 64, 64, 3), dtype=np.uint8)
    for t in range(40):
        frames[t, 20:36, (t * 2) % 48:(t * 2) % 48 + 16] = rng.integers(100, 255, 3)
    return write_video(path, frames, 24)


def test_prepare_train_resume_export_generate(tmp_path, tiny_model_dir):
    runner = CliRunner()
    for name, seed in (("a", 0), ("b", 1)):
        _square_video(tmp_path / f"{name}.mp4", seed)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps({"path": f"{n}.mp4", "caption": "a red square moves right"}) + "\n"
                                for n in ("a", "b", "broken")))
    prepared = _last_json(runner.invoke(app, ["data", "prepare", str(manifest), "--out", str(tmp_path / "data"),
                                              "--model", str(tiny_model_dir), "--height", "64", "--width", "64",
                                              "--max-seq-len", "16"]))
    assert prepared["prepared"] == 2 and [p.split("/")[-1] for p in prepared["skipped"]] == ["broken.mp4"]

    common = ["train", "--stage", "base", "--model", str(tiny_model_dir), "--data", str(tmp_path / "data"),
              "--out", str(tmp_path / "run"), "--set", "loop.batch_size=1", "--set", "loop.checkpoint_every=2",
              "--set", "lora.rank=4", "--set", "lora.alpha=4", "--set", "loop.gradient_checkpointing=false"]
    first = _last_json(runner.invoke(app, [*common, "--set", "loop.max_steps=2"]))
    assert first["final_step"] == 2
    resumed = _last_json(runner.invoke(app, [*common, "--set", "loop.max_steps=3", "--resume"]))
    assert resumed["final_step"] == 3 and resumed["steps_done"] == 1
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log if "loss" in entry] == [1, 2, 3]

    exported = _last_json(runner.invoke(app, ["train", "export", str(tmp_path / "run"), "--base", str(tiny_model_dir),
                                              "--out", str(tmp_path / "exported"), "--dtype", "fp32"]))
    video = tmp_path / "out.mp4"
    result = runner.invoke(app, ["generate", "a red square moves right", "--model", exported["model"], "--height",
                                 "64", "--width", "64", "--frames", "9", "--seed", "3", "--device", "cpu",
                                 "--set", "prompt.max_sequence_length=16", "-o", str(video), "--json"])
    assert _last_json(result)["frames"] == 9 and video.stat().st_size > 0


def test_train_needs_its_folders(tmp_path):
    result = CliRunner().invoke(app, ["train", "--stage", "base", "--model", str(tmp_path / "m"), "--data",
                                      str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "does not exist" in result.output

"""`helios bench quality --world` through the real CLI: a tiny random model end to end (MP4s, report, JSON last
line), `--compare` rows with frame sources standing in for models, and one-line errors for bad use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helios_cli.app import app
from helios_core.bench import world_quality
from helios_core.bench.world_quality import heldout_prompts, rendered_source
from helios_core.bench.world_quality_sources import FrameSourceEngine
from helios_core.video import probe_video

SMALL = ["--prompts", "2", "--seconds", "2", "--set", "video.height=64", "--set", "video.width=128"]


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELIOS_MODEL", raising=False)
    monkeypatch.delenv("HELIOS_DEBUG", raising=False)


@pytest.mark.slow
def test_tiny_model_end_to_end_writes_videos_report_and_json(tmp_path: Path, tiny_model_dir: Path,
                                                            no_model_env: None) -> None:
    out = tmp_path / "bench"
    args = ["bench", "quality", "--world", "--model", str(tiny_model_dir), *SMALL, "--seed", "0", "--out", str(out),
            "--set", "runtime.device=cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = last_json(result.output)
    assert summary["bench"] == "world_quality" and summary["settings"]["frames"] == 48
    (row,) = summary["models"]
    assert row["label"] == "tiny" and row["model"] == str(tiny_model_dir)
    assert 0.0 <= row["adherence"] <= 1.0 and set(row["drift_ratio"]) == {"color", "brightness", "saturation",
                                                                        "sharpness"}
    assert row["pass"] is False  # random weights draw no shapes
    assert summary["rendered"]["adherence"] >= 0.9  # the world's own clips of the same prompts
    assert "Helios world quality" in result.output and "[tiny] 2/2" in result.output
    for folder in ("tiny", "rendered"):
        for name in ("001", "002"):
            assert probe_video(out / folder / f"{name}.mp4").num_frames == 48
            assert json.loads((out / folder / f"{name}.json").read_text())["prompt"]
    # The sidecar names the model, so `helios generate --from tiny/001.json` remakes the video.
    assert json.loads((out / "tiny" / "001.json").read_text())["model_path"] == str(tiny_model_dir.absolute())
    report = json.loads((out / "world_quality.json").read_text())
    assert [video["video"] for video in report["models"][0]["videos"]] == [str(out / "tiny" / "001.mp4"),
                                                                         str(out / "tiny" / "002.mp4")]
    again = CliRunner().invoke(app, args)  # the same --out again: refused before any work
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_compare_gives_a_row_per_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       no_model_env: None) -> None:
    # Frame sources stand in for the model folders, so only the CLI's plumbing is under test here.
    loaded = []
    monkeypatch.setattr(world_quality, "check_model", lambda path, request: None)

    def fake_load(path, config):
        loaded.append(path)
        return FrameSourceEngine(str(path), rendered_source, heldout_prompts(2, 5))

    monkeypatch.setattr(world_quality, "load_model", fake_load)
    result = CliRunner().invoke(app, ["bench", "quality", "--world", "--model", "full=runs/full", *SMALL, "--seed",
                                      "5", "--out", str(tmp_path), "--compare", "no-anchor=runs/na", "--no-videos"])
    assert result.exit_code == 0, result.output
    assert loaded == [Path("runs/full"), Path("runs/na")]
    summary = last_json(result.output)
    assert summary["settings"]["preset"] == "default"  # every row gets the embedded model's settings
    rows = summary["models"]
    assert [(row["label"], row["model"], row["pass"]) for row in rows] == [("full", "runs/full", True),
                                                                           ("no-anchor", "runs/na", True)]
    assert not list(tmp_path.rglob("*.mp4")) and (tmp_path / "world_quality.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["--prompts", "3"], "--prompts only apply with --world"),
    ([], "give the MP4 files to score"),
    (["--world", "clip.mp4"], "not both"),
    (["--world", "--compare", "no-label"], "LABEL=MODEL_PATH"),
    (["--world", "--compare", "=runs/x"], "LABEL=MODEL_PATH"),
    (["--world", "--set", "video.fps=12"], "24 fps"),
    (["--world", "--seconds", "0.5"], "at least 1"),
])
def test_bad_use_is_one_error_line(args: list[str], message: str, tmp_path: Path, no_model_env: None) -> None:
    result = CliRunner().invoke(app, ["bench", "quality", *args, "--out" if "--world" in args else "--no-plot",
                                      *([str(tmp_path)] if "--world" in args else [])])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_vae_ceiling_adds_the_models_vae_round_trip_as_a_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             tiny_model_dir: Path, no_model_env: None) -> None:
    # The model itself is a frame source (the world's own clip); the ceiling row runs the tiny folder's real VAE.
    monkeypatch.setattr(world_quality, "check_model", lambda path, request: None)
    monkeypatch.setattr(world_quality, "load_model",
                        lambda path, config: FrameSourceEngine(str(path), rendered_source, heldout_prompts(2, 0)))
    result = CliRunner().invoke(app, ["bench", "quality", "--world", "--model", f"full={tiny_model_dir}", *SMALL,
                                      "--out", str(tmp_path), "--no-videos", "--vae-ceiling",
                                      "--set", "runtime.device=cpu"])
    assert result.exit_code == 0, result.output
    summary = last_json(result.output)
    rows = summary["models"]
    assert [(row["label"], row["model"]) for row in rows] == [("full", str(tiny_model_dir)),
                                                              ("full-vae", f"vae of {tiny_model_dir}")]
    assert rows[0]["adherence"] == 1.0 and rows[1]["adherence"] < 0.5  # a random VAE blurs every object away
    assert summary["settings"]["vae_ceiling"] is True and "[full-vae] 2/2" in result.output

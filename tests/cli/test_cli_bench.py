"""`helios bench quality` through the real CLI: table, PNG plot, and one JSON object as the last line."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from helios_cli.app import app
from helios_core.video import write_video


def _seamed_video(path):
    """Two chunks of a slowly brightening gradient, with a jump in brightness at the chunk boundary."""
    ramp = np.linspace(0, 200, 64, dtype=np.float32)[None, None, :, None]
    frames = np.repeat(np.repeat(ramp, 48, axis=1), 66, axis=0).repeat(3, axis=3)
    frames[33:] += 40  # the seam
    return write_video(path, np.clip(frames, 0, 255).astype(np.uint8), fps=24)


def test_bench_quality_reports_seam_and_writes_plot(tmp_path):
    video = _seamed_video(tmp_path / "clip.mp4")
    result = CliRunner().invoke(app, ["bench", "quality", str(video), "--plot-dir", str(tmp_path / "plots")])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    (report,) = last["videos"]
    assert report["seam_max"] > 3  # the brightness jump at frame 33 is seen as a seam
    assert (tmp_path / "plots" / "clip.quality.png").stat().st_size > 1000
    assert "Helios quality report" in result.output


def test_bench_speed_tiny_on_cpu_ends_with_json():
    result = CliRunner().invoke(app, ["bench", "speed", "--tiny", "--device", "cpu", "--height", "64", "--width", "64",
                                      "--frames", "17", "--no-diffusers"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["ours"]["e2e_fps"] > 0
    assert last["ours"]["frames"] == 33  # 17 frames need one chunk; the bench keeps the reference trimming (33)

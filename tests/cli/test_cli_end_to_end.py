"""The real CLI on the real engine with a tiny random model (64x64 px): files read back, kills and interrupts.

Slow on CPU (each video loads torch and decodes through the tiny VAE), so marked `slow`; still part of the CI run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helios_cli.app import app
from helios_core.video import probe_video, write_video

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = ["--height", "64", "--width", "64", "--device", "cpu", "--seed", "3"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helios_core.model.tiny import write_tiny_model_folder

    return write_tiny_model_folder(tmp_path_factory.mktemp("model") / "tiny", seed=0, scheduler="dmd")


@pytest.fixture
def real_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELIOS_MODEL", raising=False)
    monkeypatch.delenv("HELIOS_DEBUG", raising=False)


def read_back(path: Path) -> tuple[int, int, int, float]:
    info = probe_video(path)
    return info.num_frames, info.width, info.height, info.fps


def test_generate_animate_extend_files_match_request(runner, in_tmp: Path, tiny_model: Path, real_engine) -> None:
    model = ["--model", str(tiny_model)]
    result = runner.invoke(app, ["generate", "a fox running", *TINY, *model, "--frames", "40", "--fps", "12",
                                 "-o", "t2v.mp4", "--json"])
    assert result.exit_code == 0, result.output
    assert read_back(in_tmp / "t2v.mp4") == (40, 64, 64, 12.0)
    assert json.loads(result.stdout.strip().splitlines()[-1])["frames"] == 40

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(in_tmp / "p.png")
    result = runner.invoke(app, ["animate", "p.png", "a fox", *TINY, *model, "--frames", "20", "-o", "i2v.mp4"])
    assert result.exit_code == 0, result.output
    assert read_back(in_tmp / "i2v.mp4") == (20, 64, 64, 24.0)

    write_video(in_tmp / "clip.mp4", np.random.default_rng(1).integers(0, 255, (60, 96, 96, 3), dtype=np.uint8), 30)
    result = runner.invoke(app, ["extend", "clip.mp4", "a fox", *TINY, *model, "--frames", "20", "-o", "v2v.mp4"])
    assert result.exit_code == 0, result.output
    assert read_back(in_tmp / "v2v.mp4") == (20, 64, 64, 24.0)
    assert json.loads((in_tmp / "v2v.json").read_text())["mode"] == "v2v"


def test_model_checks_fail_before_loading(runner, in_tmp: Path, tiny_model: Path, real_engine, monkeypatch) -> None:
    from helios_core.engine import HeliosEngine

    def no_load(*args, **kwargs):
        raise AssertionError("the model must not load for a bad request")

    monkeypatch.setattr(HeliosEngine, "load", no_load)
    result = runner.invoke(app, ["generate", "a fox", *TINY, "--height", "72", "--model", str(tiny_model)])
    assert result.exit_code == 2 and "multiple of" in result.stderr, result.output
    broken = in_tmp / "broken"
    shutil.copytree(tiny_model, broken)
    shutil.rmtree(broken / "vae")
    result = runner.invoke(app, ["generate", "a fox", *TINY, "--frames", "10", "--model", str(broken)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def start_cli(cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop("HELIOS_MODEL", None)
    return subprocess.Popen([sys.executable, "-m", "helios_cli", "generate", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_line(process: subprocess.Popen, fragment: str, timeout: float = 300) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if fragment in line:
            return seen
    process.kill()
    raise AssertionError(f"never saw {fragment!r}: {''.join(seen)}")


def wait_for_decodable(path: Path, timeout: float = 60) -> int:
    """The writer's ffmpeg outlives a killed parent and closes the file; poll until it decodes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frames = probe_video(path).num_frames
            time.sleep(1.0)
            if probe_video(path).num_frames == frames:
                return frames
        except Exception:  # noqa: BLE001 - still being written
            time.sleep(0.5)
    raise AssertionError(f"{path} never became decodable")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_killed_or_interrupted_mid_video(tmp_path: Path, tiny_model: Path, how: str) -> None:
    process = start_cli(tmp_path, "a fox running", *TINY, "--model", str(tiny_model), "--frames", "330",
                        "-o", "long.mp4", "--quiet")
    wait_for_line(process, "chunk 1/10")
    process.send_signal(getattr(signal, how))
    rest = process.communicate(timeout=120)[0]
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
        partial = tmp_path / "long.partial.mp4"
        frames = wait_for_decodable(partial)
        assert frames >= 33 and frames % 33 == 0 and frames < 330
        assert not (tmp_path / "long.mp4").exists()
    else:
        assert process.returncode == 130, rest
        frames = probe_video(tmp_path / "long.mp4").num_frames
        assert frames >= 33 and frames % 33 == 0 and frames < 330
        sidecar = json.loads((tmp_path / "long.json").read_text())
        assert sidecar["completed"] is False and sidecar["frames_written"] == frames
        assert "interrupted" in rest and "Traceback" not in rest
        assert not (tmp_path / "long.partial.mp4").exists()

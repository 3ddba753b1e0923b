"""A fake engine that follows the HeliosEngine contract, so CLI tests run in a second without torch or weights.

It records every check, load and request, so tests can assert that validation happened BEFORE any load, and what
exact request (config, seed, prompt) reached the engine. Frames are flat grey, one shade per chunk.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helios_core.errors import ConfigError, ModelFolderError
from helios_core.request import ChunkResult, GenerationRequest

CHUNK_FRAMES = 33
SIZE_MULTIPLE = 16


class FakeEngine:
    """Class-level logs are reset per test by the `fake_engine` fixture (a fresh subclass each time)."""

    checks: list[GenerationRequest]
    loads: list[tuple[Path | None, object]]
    generated: list[GenerationRequest]
    fail_prompts: tuple[str, ...] = ("boom",)  # a prompt containing one of these fails inside generate
    model_name = "fake-model"

    @classmethod
    def check_request(cls, model_path: Path | None, request: GenerationRequest) -> None:
        cls.checks.append(request)
        request.segments()
        if model_path is not None and not Path(model_path).is_dir():
            raise ModelFolderError(f"model folder {model_path} does not exist")
        video = request.config.video
        if video.height % SIZE_MULTIPLE or video.width % SIZE_MULTIPLE:
            raise ConfigError(f"size {video.height}x{video.width} must be a multiple of {SIZE_MULTIPLE}")

    @classmethod
    def load(cls, model_path: Path | None, runtime: object) -> FakeEngine:
        cls.loads.append((model_path, runtime))
        return cls()

    def plan(self, request: GenerationRequest) -> tuple[int, int]:
        frames = request.config.video.requested_pixel_frames
        return math.ceil(frames / CHUNK_FRAMES), frames

    def generate(self, request: GenerationRequest):
        type(self).generated.append(request)
        if any(word in request.prompt for word in self.fail_prompts):
            raise RuntimeError("the fake engine was told to fail")
        num_chunks, total = self.plan(request)
        video = request.config.video
        for index in range(num_chunks):
            count = min(CHUNK_FRAMES, total - index * CHUNK_FRAMES)
            frames = np.full((count, video.height, video.width, 3), 40 + 40 * index, dtype=np.uint8)
            yield ChunkResult(
                chunk_index=index,
                num_chunks=num_chunks,
                pixel_frames=frames,
                first_frame_index=index * CHUNK_FRAMES,
                timings={"total": 0.01},
                latent_stats={"mean": [0.0], "var": [1.0]},
            )


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> type[FakeEngine]:
    engine = type("RecordingFakeEngine", (FakeEngine,), {"checks": [], "loads": [], "generated": []})
    monkeypatch.setattr("helios_cli.execute.engine_class", lambda: engine)
    monkeypatch.delenv("HELIOS_MODEL", raising=False)
    monkeypatch.delenv("HELIOS_DEBUG", raising=False)
    return engine


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with the temporary folder as the working directory (default outputs/ lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


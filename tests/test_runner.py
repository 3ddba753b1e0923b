"""run_to_file: streams chunks into the MP4, writes the sidecar on success, Ctrl-C, SIGTERM and crashes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from helios_core.config import GenerationConfig
from helios_core.errors import OutputPathError
from helios_core.request import ChunkResult, GenerationRequest
from helios_core.runner import RunInterrupted, run_to_file
from helios_core.video import probe_video, read_video, read_video_metadata

CHUNK = 33


class ScriptedEngine:
    """Yields 33-frame chunks (the last one cut to the request); `stop_after` chunks, then does `then`."""

    model_name = "scripted"

    def __init__(self, stop_after: int | None = None, then: str = "interrupt") -> None:
        self.stop_after = stop_after
        self.then = then

    def plan(self, request: GenerationRequest) -> tuple[int, int]:
        frames = request.config.video.requested_pixel_frames
        return -(-frames // CHUNK), frames

    def generate(self, request: GenerationRequest):
        num_chunks, total = self.plan(request)
        video = request.config.video
        for index in range(num_chunks):
            if index == self.stop_after:
                if self.then == "interrupt":
                    raise KeyboardInterrupt
                if self.then == "sigterm":
                    os.kill(os.getpid(), signal.SIGTERM)
                raise RuntimeError("engine exploded")
            count = min(CHUNK, total - index * CHUNK)
            yield ChunkResult(
                chunk_index=index,
                num_chunks=num_chunks,
                pixel_frames=np.full((count, video.height, video.width, 3), 50 * (index + 1), dtype=np.uint8),
                first_frame_index=index * CHUNK,
                timings={"total": 0.5},
                latent_stats={},
                drift_warnings=["saturation creeping"] if index == 1 else [],
                actions=["history noised"] if index == 1 else [],
            )


def make_request(frames: int = 80, seed: int = 12) -> GenerationRequest:
    config = GenerationConfig().with_values({"video.height": 32, "video.width": 48, "video.num_frames": frames})
    return GenerationRequest(config=config, seed=seed, prompt="a fox in the snow")


def test_completed_run_writes_video_tags_and_sidecar(tmp_path: Path) -> None:
    output = tmp_path / "fox.mp4"
    seen: list[int] = []
    result = run_to_file(ScriptedEngine(), make_request(), output, overwrite=False,
                         on_chunk=lambda chunk: seen.append(chunk.chunk_index), extra_metadata={"inputs": {}})
    assert seen == [0, 1, 2]
    assert result.completed and result.frames == 80 and result.num_chunks == 3 and result.planned_chunks == 3
    info = probe_video(output)
    assert (info.num_frames, info.width, info.height, info.fps) == (80, 48, 32, 24.0)
    sidecar = json.loads((tmp_path / "fox.json").read_text())
    assert sidecar["completed"] is True
    assert sidecar["config"] == make_request().config.to_dict()
    assert sidecar["seed"] == 12 and sidecar["prompt"] == "a fox in the snow" and sidecar["mode"] == "t2v"
    assert sidecar["timings"]["per_chunk_fps"] == [66.0, 66.0, 28.0]
    assert sidecar["drift"] == {"warnings": ["saturation creeping"], "actions": ["history noised"]}
    assert sidecar["frames_written"] == 80 and sidecar["inputs"] == {}
    assert sidecar["video_file"] == str(output)
    tags = read_video_metadata(output)
    assert tags["title"] == "a fox in the snow"
    assert json.loads(tags["comment"])["seed"] == 12
    assert result.to_json_dict()["chunk_fps"] == [66.0, 66.0, 28.0]


@pytest.mark.parametrize("how", ["interrupt", "sigterm"])
def test_interrupt_finalises_finished_chunks(tmp_path: Path, how: str) -> None:
    output = tmp_path / "fox.mp4"
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted) as stopped:
        run_to_file(ScriptedEngine(stop_after=2, then=how), make_request(), output, overwrite=False)
    assert signal.getsignal(signal.SIGTERM) is handler_before
    result = stopped.value.result
    assert not result.completed and result.frames == 66
    clip = read_video(output)
    assert len(clip.pixel_frames) == 66
    sidecar = json.loads((tmp_path / "fox.json").read_text())
    assert sidecar["completed"] is False and sidecar["frames_written"] == 66 and sidecar["chunks_written"] == 2
    assert not (tmp_path / "fox.partial.mp4").exists()


def test_crash_keeps_partial_and_records_error(tmp_path: Path) -> None:
    output = tmp_path / "fox.mp4"
    with pytest.raises(RuntimeError, match="engine exploded"):
        run_to_file(ScriptedEngine(stop_after=1, then="crash"), make_request(), output, overwrite=False)
    assert not output.exists()
    assert len(read_video(tmp_path / "fox.partial.mp4").pixel_frames) == 33
    sidecar = json.loads((tmp_path / "fox.json").read_text())
    assert sidecar["completed"] is False and "engine exploded" in sidecar["error"]
    assert sidecar["video_file"] == str(tmp_path / "fox.partial.mp4")


def test_interrupt_before_first_chunk_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RunInterrupted) as stopped:
        run_to_file(ScriptedEngine(stop_after=0), make_request(), tmp_path / "fox.mp4", overwrite=False)
    assert stopped.value.result.sidecar is None
    assert list(tmp_path.iterdir()) == []


def test_existing_files_need_overwrite(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"old")
    with pytest.raises(OutputPathError, match="already exists"):
        run_to_file(ScriptedEngine(), make_request(), tmp_path / "a.mp4", overwrite=False)
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(OutputPathError, match="b.json"):
        run_to_file(ScriptedEngine(), make_request(), tmp_path / "b.mp4", overwrite=False)
    assert (tmp_path / "a.mp4").read_bytes() == b"old" and (tmp_path / "b.json").read_text() == "{}"
    result = run_to_file(ScriptedEngine(), make_request(frames=33), tmp_path / "b.mp4", overwrite=True)
    assert result.completed and json.loads((tmp_path / "b.json").read_text())["completed"] is True

"""Run one generation request into one MP4 file, chunk by chunk, with its JSON sidecar.

`run_to_file` is the glue between an engine and the streaming writer: each decoded chunk goes to ffmpeg as soon as
the engine yields it, so memory stays flat and a crash loses at most the chunk in flight. It does no printing; a
caller that wants progress passes `on_chunk`.

Invariants:
- The sidecar `NAME.json` is written whenever a frame reached the file: after a normal finish (`completed: true`),
  after Ctrl-C or SIGTERM (`completed: false`, and `NAME.mp4` holds every finished chunk), and after a crash
  (`completed: false`, an `error` field, and the finished chunks in `NAME.partial.mp4`). A run stopped before its
  first chunk leaves no file at all (the writer deletes an empty one), so it leaves no sidecar either: an orphan
  sidecar would only block the next run.
- Nothing is overwritten without `overwrite=True`: not `NAME.mp4`, not `NAME.partial.mp4` (the writer's checks),
  and not an existing `NAME.json`.
- SIGTERM is turned into KeyboardInterrupt only while a video is being written, and the previous handler is put
  back afterwards, so an unattended job killed by a scheduler still leaves a playable file.
- An interrupt is re-raised as `RunInterrupted` (a KeyboardInterrupt that carries the `RunResult`), so code that
  treats Ctrl-C as "stop" keeps working and a caller that wants the result can still report it.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import helios_core
from helios_core.errors import OutputPathError
from helios_core.request import ChunkResult, GenerationRequest
from helios_core.video import (
    StreamingVideoWriter,
    check_output_path,
    partial_path_for,
    sidecar_path,
    write_sidecar,
)

# MP4 tag values travel on ffmpeg's command line; a prompt longer than this is cut in the tag (never in the sidecar).
MAX_TAG_PROMPT_CHARS = 4000


class Engine(Protocol):
    model_name: str

    def generate(self, request: GenerationRequest) -> Iterator[ChunkResult]: ...


@dataclass
class RunResult:
    output: Path
    sidecar: Path | None  # None when no frame was written (nothing to describe)
    seed: int
    mode: str
    model: str
    frames: int = 0  # pixel frames written to the file
    num_chunks: int = 0  # chunks written (of `planned_chunks` when the engine reported it)
    planned_chunks: int | None = None
    seconds: float = 0.0  # wall clock from the first request to the closed file
    fps: float = 0.0  # end-to-end: frames / seconds, text encoding, decoding and writing included
    completed: bool = False
    chunk_fps: list[float] = field(default_factory=list)
    chunk_timings: list[dict[str, float]] = field(default_factory=list)
    drift_warnings: list[Any] = field(default_factory=list)
    drift_actions: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "sidecar": str(self.sidecar) if self.sidecar is not None else None,
            "completed": self.completed,
            "seed": self.seed,
            "mode": self.mode,
            "model": self.model,
            "frames": self.frames,
            "num_chunks": self.num_chunks,
            "planned_chunks": self.planned_chunks,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 3),
            "chunk_fps": [round(f, 3) for f in self.chunk_fps],
            "drift_warnings": [to_plain(w) for w in self.drift_warnings],
            "drift_actions": list(self.drift_actions),
            "error": self.error,
        }


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run; the file and sidecar hold the finished chunks."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(f"interrupted after {result.frames} frames")
        self.result = result


def run_to_file(
    engine: Engine,
    request: GenerationRequest,
    output: Path,
    *,
    overwrite: bool,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> RunResult:
    """Generate `request` into `output` (a `.mp4` path) and write `NAME.json` beside it; see the module docstring."""
    output = Path(output)
    check_output_path(output, overwrite)
    check_sidecar_path(output, overwrite)
    config = request.config
    result = RunResult(
        output=output, sidecar=sidecar_path(output), seed=request.seed, mode=request.mode, model=engine.model_name
    )
    plan = getattr(engine, "plan", None)
    if callable(plan):
        planned = plan(request)
        # The engine's FramePlan, or a plain (num_chunks, num_pixel_frames) pair.
        result.planned_chunks = int(getattr(planned, "num_chunks", None) or planned[0])
    writer = StreamingVideoWriter(
        output,
        config.video.width,
        config.video.height,
        config.video.fps,
        crf=config.output.crf,
        x264_preset=config.output.x264_preset,
        metadata=mp4_tags(request, engine.model_name),
        overwrite=overwrite,
    )
    started_at = datetime.now(timezone.utc)
    start = time.perf_counter()
    try:
        with sigterm_as_keyboard_interrupt(), writer:
            for chunk in engine.generate(request):
                writer.write_frames(chunk.pixel_frames)
                _record_chunk(result, chunk)
                if on_chunk is not None:
                    on_chunk(chunk)
        result.completed = True
    except KeyboardInterrupt:
        # The writer's context manager has already finalised NAME.mp4 with the chunks written so far (or, before
        # the first chunk, removed the empty file).
        _finish(result, request, started_at, start, extra_metadata)
        raise RunInterrupted(result) from None
    except BaseException as err:
        result.error = f"{type(err).__name__}: {err}"
        _finish(result, request, started_at, start, extra_metadata)
        raise
    _finish(result, request, started_at, start, extra_metadata)
    return result


def _record_chunk(result: RunResult, chunk: ChunkResult) -> None:
    result.frames += len(chunk.pixel_frames)
    result.num_chunks += 1
    result.chunk_fps.append(chunk.fps)
    result.chunk_timings.append(dict(chunk.timings))
    result.drift_warnings.extend(chunk.drift_warnings)
    result.drift_actions.extend(chunk.actions)


def _finish(
    result: RunResult,
    request: GenerationRequest,
    started_at: datetime,
    start: float,
    extra_metadata: dict[str, Any] | None,
) -> None:
    result.seconds = time.perf_counter() - start
    result.fps = result.frames / result.seconds if result.seconds > 0 else 0.0
    if result.frames == 0:
        result.sidecar = None
        return
    write_sidecar(result.output, sidecar_dict(result, request, started_at, extra_metadata))


def check_sidecar_path(output: Path, overwrite: bool) -> None:
    """Refuse to replace an existing `NAME.json` (it may describe a video the user moved away) without overwrite."""
    existing = sidecar_path(output)
    if existing.exists() and not overwrite:
        raise OutputPathError(
            f"sidecar {existing} already exists; pass --overwrite to replace it, or choose another output name"
        )


def sidecar_dict(
    result: RunResult,
    request: GenerationRequest,
    started_at: datetime,
    extra_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to understand and reproduce the video (`helios generate --from NAME.json`)."""
    config = request.config
    data: dict[str, Any] = {
        "helios_version": helios_core.__version__,
        "completed": result.completed,
        "mode": result.mode,
        "model": result.model,
        "seed": request.seed,
        "prompt": request.prompt,
        "schedule": [{"start": s.start_second, "prompt": s.prompt} for s in request.schedule],
        "config": config.to_dict(),
        "output": str(result.output),
        # Where the frames are now: NAME.mp4, or NAME.partial.mp4 after a crash.
        "video_file": str(result.output if result.output.exists() else partial_path_for(result.output)),
        "frames_written": result.frames,
        "frames_requested": config.video.requested_pixel_frames,
        "fps": config.video.fps,
        "width": config.video.width,
        "height": config.video.height,
        "chunks_written": result.num_chunks,
        "chunks_planned": result.planned_chunks,
        "started_at": started_at.isoformat(timespec="seconds"),
        "timings": {
            "total_seconds": round(result.seconds, 4),
            "end_to_end_fps": round(result.fps, 4),
            "per_chunk": result.chunk_timings,
            "per_chunk_fps": [_finite(f) for f in result.chunk_fps],
        },
        "drift": {
            "warnings": [to_plain(w) for w in result.drift_warnings],
            "actions": list(result.drift_actions),
        },
    }
    if result.error is not None:
        data["error"] = result.error
    for key, value in (extra_metadata or {}).items():
        data.setdefault(key, to_plain(value))  # never let extra data hide the recorded facts above
    return data


def mp4_tags(request: GenerationRequest, model_name: str) -> dict[str, str]:
    """Tags the mp4 muxer keeps: the prompt as the title, and seed/model/preset/version as JSON in `comment`."""
    prompt = request.segments()[0].prompt if request.schedule else request.prompt
    facts = {
        "prompt": prompt[:MAX_TAG_PROMPT_CHARS],
        "seed": request.seed,
        "model": model_name,
        "preset": request.config.preset,
        "helios_version": helios_core.__version__,
        "mode": request.mode,
    }
    return {"title": prompt[:MAX_TAG_PROMPT_CHARS], "comment": json.dumps(facts, ensure_ascii=False)}


@contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises KeyboardInterrupt in the main thread (the writer then finalises the file)."""
    if threading.current_thread() is not threading.main_thread():
        # signal.signal only works in the main thread; elsewhere the caller owns signal handling.
        yield
        return

    def _raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def to_plain(value: Any) -> Any:
    """JSON-ready data for sidecars: dataclasses (e.g. drift warnings) become dicts, paths become strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return to_plain(value.to_dict())
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return _finite(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return to_plain(value.item())
    return str(value)


def _finite(value: float) -> float | None:
    """JSON has no inf/nan: a chunk that took no measurable time reports null instead of Infinity."""
    return round(float(value), 4) if value == value and abs(value) != float("inf") else None

"""Per-video progress: a rich bar on a terminal, one plain line per chunk elsewhere.

What a user sees for each chunk: chunk i/N, that chunk's FPS, the running end-to-end FPS (everything since the run
started, text encoding and writing included), and an ETA from the mean chunk time so far. Drift warnings are printed
as their own lines above the bar the moment the engine reports them, so they stay visible after the bar is gone.

Plain mode (not a terminal, or `--quiet`) prints the same facts as one line per chunk, which logs and batch scripts
can follow. Nothing here decides anything: it only formats `ChunkResult`s.
"""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.text import Text

from helios_cli.console import Output
from helios_core.request import ChunkResult


def describe_drift_warning(warning: Any) -> str:
    """A one-line description of the drift detector's warning, whatever shape it has (message attribute or str)."""
    message = getattr(warning, "message", None)
    if isinstance(message, str) and message:
        return message
    return str(warning)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class VideoProgress:
    """Context manager around one video's generation; pass `on_chunk` to `run_to_file`."""

    def __init__(self, out: Output, label: str, num_chunks: int, total_frames: int) -> None:
        self.out = out
        self.label = label
        self.num_chunks = num_chunks
        self.total_frames = total_frames
        self.frames_done = 0
        self.chunks_done = 0
        self.chunk_seconds: list[float] = []
        self.start = time.perf_counter()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> VideoProgress:
        self.start = time.perf_counter()
        if self.out.interactive:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("chunk {task.completed:.0f}/{task.total:.0f}"),
                TextColumn("{task.fields[chunk_fps]}"),
                TextColumn("{task.fields[overall_fps]}"),
                TextColumn("eta {task.fields[eta]}"),
                console=self.out.human,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.label, total=self.num_chunks, chunk_fps="", overall_fps="", eta=format_eta(None)
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_chunk(self, chunk: ChunkResult) -> None:
        elapsed = time.perf_counter() - self.start
        self.chunks_done += 1
        self.frames_done += len(chunk.pixel_frames)
        self.chunk_seconds.append(chunk.timings.get("total", 0.0))
        for warning in chunk.drift_warnings:
            self._print(f"warning: drift in chunk {chunk.chunk_index + 1}: {describe_drift_warning(warning)}",
                        "bold yellow")
        for action in chunk.actions:
            self._print(f"anti-drift: {action}", "yellow")
        overall_fps = self.frames_done / elapsed if elapsed > 0 else 0.0
        remaining = chunk.num_chunks - (chunk.chunk_index + 1)
        mean_chunk = sum(self.chunk_seconds) / len(self.chunk_seconds)
        eta = format_eta(remaining * mean_chunk)
        chunk_fps = f"{chunk.fps:.1f} fps" if chunk.fps != float("inf") else "- fps"
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                completed=chunk.chunk_index + 1,
                total=chunk.num_chunks,
                chunk_fps=chunk_fps,
                overall_fps=f"{overall_fps:.1f} fps overall",
                eta=eta,
            )
        else:
            self.out.info(
                f"{self.label}: chunk {chunk.chunk_index + 1}/{chunk.num_chunks}, {len(chunk.pixel_frames)} frames, "
                f"{chunk_fps}, {overall_fps:.1f} fps overall, eta {eta}"
            )

    def _print(self, message: str, style: str) -> None:
        # Progress.console.print draws above a live bar; without one it is the plain human console.
        console = self._progress.console if self._progress is not None else self.out.human
        console.print(Text(message, style=style))

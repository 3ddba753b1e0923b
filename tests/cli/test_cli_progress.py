"""Progress display: a live bar with drift warnings as lines above it on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from rich.console import Console

from helios_cli.console import Output
from helios_cli.progress import VideoProgress, format_eta
from helios_core.request import ChunkResult


@dataclass
class FakeDriftWarning:
    message: str


def chunks(num_chunks: int = 3) -> list[ChunkResult]:
    return [
        ChunkResult(
            chunk_index=i,
            num_chunks=num_chunks,
            pixel_frames=np.zeros((33, 8, 8, 3), dtype=np.uint8),
            first_frame_index=33 * i,
            timings={"total": 2.0},
            latent_stats={},
            drift_warnings=[FakeDriftWarning("saturation up 30% at 2.8 s")] if i == 1 else [],
            actions=["history latents noised"] if i == 1 else [],
        )
        for i in range(num_chunks)
    ]


def output_to(buffer: io.StringIO, *, terminal: bool, quiet: bool = False) -> Output:
    out = Output(quiet=quiet)
    out.human = Console(file=buffer, force_terminal=terminal, width=140, highlight=False, soft_wrap=True)
    return out


def test_plain_lines_one_per_chunk_with_warnings() -> None:
    buffer = io.StringIO()
    with VideoProgress(output_to(buffer, terminal=False), "fox.mp4", 3, 99) as progress:
        for chunk in chunks():
            progress.on_chunk(chunk)
    lines = buffer.getvalue().splitlines()
    chunk_lines = [line for line in lines if line.startswith("fox.mp4: chunk")]
    assert len(chunk_lines) == 3
    assert chunk_lines[0].startswith("fox.mp4: chunk 1/3, 33 frames, 16.5 fps,")
    assert chunk_lines[1].endswith("eta 0:00:02") and chunk_lines[2].endswith("eta 0:00:00")
    assert "warning: drift in chunk 2: saturation up 30% at 2.8 s" in lines
    assert "anti-drift: history latents noised" in lines


def test_terminal_bar_shows_chunks_fps_and_warnings() -> None:
    buffer = io.StringIO()
    out = output_to(buffer, terminal=True)
    assert out.interactive
    with VideoProgress(out, "fox.mp4", 3, 99) as progress:
        for chunk in chunks():
            progress.on_chunk(chunk)
    text = buffer.getvalue()
    assert "chunk 3/3" in text and "16.5 fps" in text and "fps overall" in text
    assert "saturation up 30% at 2.8 s" in text
    assert "fox.mp4: chunk" not in text  # no plain lines when the bar is live


def test_quiet_means_plain_lines_even_on_a_terminal() -> None:
    buffer = io.StringIO()
    out = output_to(buffer, terminal=True, quiet=True)
    assert not out.interactive
    with VideoProgress(out, "fox.mp4", 3, 99) as progress:
        progress.on_chunk(chunks()[0])
    assert "fox.mp4: chunk 1/3" in buffer.getvalue()


def test_format_eta() -> None:
    assert format_eta(None) == "-:--:--"
    assert format_eta(3725.4) == "1:02:05"

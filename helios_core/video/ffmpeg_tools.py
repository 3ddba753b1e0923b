"""Small helpers for running the ffmpeg binary that imageio-ffmpeg bundles.

Invariants:
- Only imageio-ffmpeg's binary is used (`imageio_ffmpeg.get_ffmpeg_exe()`), so no system ffmpeg is needed.
- ffmpeg's stderr always goes to an anonymous temporary file, never to a pipe: a pipe nobody reads fills at 64 KiB
  and blocks ffmpeg forever, and a file keeps the whole log for the error message.
- A failed ffmpeg run raises RuntimeError (an environment or programming fault, not a user error) carrying the tail
  of ffmpeg's log, so the reason is visible without rerunning anything.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from typing import IO

import imageio_ffmpeg

# Enough lines to show the failing option or file, few enough to stay readable in one error message.
STDERR_TAIL_LINES = 15


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary (looked up once)."""
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise RuntimeError(
            f"imageio-ffmpeg found no ffmpeg binary for this platform ({error}); reinstall imageio-ffmpeg"
        ) from error


def read_log_tail(log_file: IO[bytes], max_lines: int = STDERR_TAIL_LINES) -> str:
    """The last `max_lines` non-empty lines of a log file that a process wrote to, as one string."""
    log_file.flush()
    log_file.seek(0)
    lines = [line.strip() for line in log_file.read().decode("utf-8", errors="replace").splitlines()]
    return "\n".join([line for line in lines if line][-max_lines:])


def run_ffmpeg(arguments: list[str], purpose: str) -> bytes:
    """Run ffmpeg with `arguments` (without the executable) to completion and return its stdout.

    `purpose` completes the sentence "ffmpeg failed to ..." in the RuntimeError raised on a non-zero exit.
    """
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", *arguments]
    with tempfile.TemporaryFile() as stderr_log:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr_log, check=False)
        if completed.returncode != 0:
            raise RuntimeError(
                f"ffmpeg failed to {purpose} (exit code {completed.returncode}):\n{read_log_tail(stderr_log)}"
            )
    return completed.stdout

"""`helios bench speed --model MODEL`: how long the user's own command takes to make a video, start-up included.

    run_model_speed(ModelSpeedSettings(model=None, label="default", seconds=60))  -> JSON-able dict (keys below)

Issue 6 asks for a real-time figure as a user would see it: "a 60-second video in less wall-clock time than its
length, start-up included". So the bench does not time an engine inside this process (that is `run_speed_bench`);
it spawns `python -m helios_cli generate ...` into a temporary folder and times spawn-to-exit. Interpreter start,
imports, model loading, text encoding, generation and the MP4 write are all inside `wall_seconds`. The child's own
sidecar (`NAME.json`) then says how long generation took (`timings.total_seconds`: first request to closed file),
so `startup_seconds` = wall - generation is everything a user pays before the first chunk starts and after the
file closes.

Result keys (`model_speed_report`): bench, scope, model, preset, device, cpu_count, torch_threads, prompt, seed,
video_seconds, frames, width, height, fps, chunks, wall_seconds, startup_seconds, generation_seconds,
generation_fps, realtime_factor (video seconds per wall second; > 1 is faster than real time),
faster_than_real_time, chunk_fps_median. Values are not rounded (the table rounds).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helios_core.errors import ConfigError, HeliosError, ModelFolderError
from helios_core.video import read_sidecar, sidecar_path

DEFAULT_PROMPT = "a red circle moving left on a blue background"
DEFAULT_SECONDS = 60.0
SCOPE = ("wall clock from spawning `python -m helios_cli generate` to its exit: interpreter start, imports, model "
         "load, text encoding, every chunk, the MP4 write; generation_seconds is the child's own timing of the run "
         "(first request to closed file), startup_seconds the rest")
MODEL_ENV = "HELIOS_MODEL"  # generate reads it when --model is absent; the embedded model must not pick it up
THREADS_ENV = "OMP_NUM_THREADS"  # what sets torch's CPU threads in the child, when set at all


class GenerateFailed(HeliosError):
    """The timed `helios generate` exited non-zero (or left no sidecar); the message is its last stderr line."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code if exit_code > 0 else 1  # a signal (negative code) is still a failure


@dataclass(frozen=True)
class ModelSpeedSettings:
    model: Path | None  # None = the embedded default model
    label: str  # how the report names the model
    seconds: float = DEFAULT_SECONDS
    prompt: str = DEFAULT_PROMPT
    seed: int = 0
    device: str = "auto"
    sets: tuple[str, ...] = ()  # `--set KEY=VALUE` items, handed to generate as they are

    def validate(self) -> ModelSpeedSettings:
        if not self.seconds > 0:
            raise ConfigError(f"--seconds must be positive, got {self.seconds:g}")
        if not self.prompt.strip():
            raise ConfigError("--prompt must not be empty")
        if self.model is not None and not self.model.expanduser().is_dir():
            raise ModelFolderError(f"--model {self.model}: no such model folder")
        return self


def generate_command(settings: ModelSpeedSettings, output: Path, python: str = sys.executable) -> list[str]:
    """The command a user would type, spelled through the interpreter (no reliance on the `helios` script on PATH)."""
    command = [python, "-m", "helios_cli", "generate", settings.prompt, "--seconds", f"{settings.seconds:g}",
               "--seed", str(settings.seed), "--device", settings.device, "--output", str(output)]
    if settings.model is not None:
        command += ["--model", str(settings.model.expanduser().absolute())]
    for item in settings.sets:
        command += ["--set", item]
    return command


def child_environment(settings: ModelSpeedSettings, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    if settings.model is None:
        env.pop(MODEL_ENV, None)  # 'default' means the embedded model even where HELIOS_MODEL is set
    return env


def cpu_count() -> int:
    """CPUs this process may run on (a container's or taskset's limit), which is what the child gets too."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_threads(env: dict[str, str]) -> int | None:
    """The child's torch CPU threads when the environment fixes them; None when torch picks its own default.
    Read from the environment, not by importing torch here: this process's threads may differ from the child's."""
    value = env.get(THREADS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def time_generate(command: list[str], env: dict[str, str], stderr_path: Path,
                  echo: Callable[[str], None] | None = None) -> float:
    """Run `command`, pass its stdout lines to `echo` as they come, and return spawn-to-exit seconds.
    stderr goes to a file (not a pipe that nobody reads while stdout is being read, which could fill and block)."""
    with open(stderr_path, "w", encoding="utf-8") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True,
                                   encoding="utf-8", errors="replace")
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if echo is not None:
                    echo(line.rstrip("\n"))
            code = process.wait()
        finally:
            if process.poll() is None:  # interrupted here: do not leave the child running
                process.terminate()
                process.wait()
        wall = time.perf_counter() - started
    if code != 0:
        message = last_line(stderr_path.read_text(encoding="utf-8", errors="replace")) or "no error output"
        raise GenerateFailed(f"helios generate exited with code {code}: {message}", code)
    return wall


def model_speed_report(sidecar: dict[str, Any], *, wall_seconds: float, label: str, cpus: int,
                       threads: int | None) -> dict[str, Any]:
    """The bench's result from the child's sidecar and the measured wall clock (pure: no files, no clocks)."""
    timings = sidecar["timings"]
    frames = int(sidecar["frames_written"])
    fps = float(sidecar["fps"])
    generation = float(timings["total_seconds"])
    video_seconds = frames / fps
    chunk_fps = [float(f) for f in timings.get("per_chunk_fps") or [] if f is not None]
    config = sidecar.get("config") or {}
    return {
        "bench": "helios speed --model",
        "scope": SCOPE,
        "model": label,
        "preset": config.get("preset"),
        "device": (config.get("runtime") or {}).get("device"),
        "cpu_count": cpus,
        "torch_threads": threads,
        "prompt": sidecar.get("prompt"),
        "seed": sidecar.get("seed"),
        "video_seconds": video_seconds,
        "frames": frames,
        "width": int(sidecar["width"]),
        "height": int(sidecar["height"]),
        "fps": fps,
        "chunks": sidecar.get("chunks_written"),
        "wall_seconds": wall_seconds,
        "startup_seconds": wall_seconds - generation,
        "generation_seconds": generation,
        "generation_fps": timings.get("end_to_end_fps"),
        "realtime_factor": video_seconds / wall_seconds,
        "faster_than_real_time": wall_seconds < video_seconds,
        "chunk_fps_median": statistics.median(chunk_fps) if chunk_fps else None,
    }


def run_model_speed(settings: ModelSpeedSettings, *, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Make one video with `helios generate` in a temporary folder, timed from spawn to exit; see the docstring."""
    settings.validate()
    env = child_environment(settings)
    with tempfile.TemporaryDirectory(prefix="helios-bench-speed-") as folder:
        output = Path(folder) / "bench.mp4"
        wall = time_generate(generate_command(settings, output), env, Path(folder) / "stderr.txt", echo)
        if not sidecar_path(output).is_file():
            raise GenerateFailed(f"helios generate exited cleanly but wrote no sidecar {sidecar_path(output)}", 1)
        sidecar = read_sidecar(output)
    return model_speed_report(sidecar, wall_seconds=wall, label=settings.label, cpus=cpu_count(),
                              threads=torch_threads(env))


MODEL_TABLE_ROWS = (
    ("model", "model"), ("preset", "preset"), ("device", "device"), ("cpu_count", "CPUs"),
    ("torch_threads", "torch threads"), ("frames", "frames"), ("video_seconds", "video length (s)"),
    ("wall_seconds", "wall clock (s)"), ("startup_seconds", "start-up (s)"), ("generation_seconds", "generation (s)"),
    ("chunk_fps_median", "chunk FPS (median)"), ("realtime_factor", "real-time factor"),
    ("faster_than_real_time", "faster than real time"),
)


def model_table_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows for the human table; floats to 2 decimals, torch's own thread choice spelled out."""
    rows = []
    for key, header in MODEL_TABLE_ROWS:
        value = result[key]
        if key == "torch_threads" and value is None:
            text = "torch default"
        elif isinstance(value, float):
            text = f"{value:.2f}"
        else:
            text = str(value)
        rows.append((header, text))
    rows.insert(6, ("size", f"{result['width']}x{result['height']} at {result['fps']:g} fps"))
    return rows

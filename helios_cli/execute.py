"""Validate jobs, load the engine once, and run each job into its file with progress and a result.

Order, for one video and for a batch alike:
    1. build every job's request (config, prompt, media) and check it: prompt, output path, writer settings,
       and `HeliosEngine.check_request` (model folder parts, size multiples) - no weights are loaded yet;
    2. load the engine once (`HeliosEngine.load`);
    3. run each job with `run_to_file`, showing progress and printing its result.
A single video stops at the first problem (a UserInputError: one line, exit 2). A batch reports a failed item and
goes on with the others; its exit code is 1 if any item failed.

The engine class is looked up through `engine_class()` at call time: importing it pulls in torch, which `helios
--help` should not pay for, and tests replace it with a fake that follows the same contract.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helios_cli.console import Output
from helios_cli.errors import debug_enabled
from helios_cli.inputs import check_output_settings
from helios_cli.progress import VideoProgress
from helios_core.errors import UserInputError
from helios_core.request import GenerationRequest
from helios_core.runner import RunResult, check_sidecar_path, run_to_file
from helios_core.schedule import check_schedule_fits
from helios_core.video import check_output_path, partial_path_for


def engine_class() -> Any:
    """The engine class (imported lazily: it imports torch)."""
    from helios_core.engine import HeliosEngine

    return HeliosEngine


@dataclass
class Job:
    """One video to make. `build` reads the inputs and returns the request; it may be called more than once."""

    label: str
    output: Path
    overwrite: bool
    build: Callable[[], GenerationRequest]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "command line"  # where the job came from, for messages ("prompts file x line 3")


def check_job(job: Job, model_path: Path | None) -> GenerationRequest:
    """Every check that needs no weights; returns the built request."""
    request = job.build()
    segments = request.segments()  # raises on an empty prompt
    video = request.config.video
    if len(segments) > 1:
        check_schedule_fits(segments, video.requested_pixel_frames / video.fps, "--schedule")
    check_output_settings(request.config)
    check_output_path(job.output, job.overwrite)
    check_sidecar_path(job.output, job.overwrite)
    engine_class().check_request(model_path, request)
    return request


def load_engine(model_path: Path | None, request: GenerationRequest, out: Output) -> Any:
    where = str(model_path) if model_path is not None else "the embedded default model"
    out.info(f"loading {where} ...", style="dim")
    return engine_class().load(model_path, request.config.runtime)


def describe_job(job: Job, request: GenerationRequest, out: Output) -> None:
    """The seed first: it is what a user needs to reproduce a video they like, even one they interrupt."""
    video = request.config.video
    out.info(f"{job.label}: seed {request.seed}, {request.mode}, {video.width}x{video.height} at {video.fps:g} fps")


def run_job(engine: Any, job: Job, request: GenerationRequest, out: Output) -> RunResult:
    """Generate one video with progress; print and return its result (RunInterrupted propagates)."""
    video = request.config.video
    num_chunks, num_pixel_frames = plan_counts(engine.plan(request))
    requested = video.requested_pixel_frames
    note = "" if num_pixel_frames == requested else f" ({requested} requested)"
    out.info(f"{num_pixel_frames} frames{note} = {num_pixel_frames / video.fps:.1f} s in {num_chunks} chunks")
    _warn_unknown_words(engine, request, out)
    with VideoProgress(out, job.label, num_chunks, num_pixel_frames) as progress:
        result = run_to_file(
            engine, request, job.output, overwrite=job.overwrite, on_chunk=progress.on_chunk,
            extra_metadata=job.metadata,
        )
    out.info(
        f"wrote {result.output} ({result.frames} frames, {result.seconds:.1f} s, {result.fps:.1f} fps end to end)",
        style="green",
    )
    if result.drift_warnings:
        out.warning(f"{len(result.drift_warnings)} drift warning(s); details in {result.sidecar}")
    out.result({"status": "completed", **result.to_json_dict()})
    return result


def _warn_unknown_words(engine: Any, request: GenerationRequest, out: Output) -> None:
    """A small model knows a small vocabulary; words it has never seen are ignored, which users should know."""
    unknown_words = getattr(engine, "unknown_words", None)
    if not callable(unknown_words):
        return
    words = sorted({word for segment in request.segments() for word in unknown_words(segment.prompt)})
    if words:
        out.warning(f"the model does not know these words and will ignore them: {', '.join(words)}")


def plan_counts(plan: Any) -> tuple[int, int]:
    """(chunks, pixel frames) from the engine's plan: a FramePlan-like object or a plain pair."""
    if hasattr(plan, "num_chunks"):
        return int(plan.num_chunks), int(plan.num_pixel_frames)
    num_chunks, num_pixel_frames = plan
    return int(num_chunks), int(num_pixel_frames)


def report_interrupted(result: RunResult, out: Output) -> None:
    if result.frames:
        where = result.output if result.output.exists() else partial_path_for(result.output)
        out.warning(f"interrupted: kept {result.frames} frames ({result.num_chunks} chunks) in {where}")
    else:
        out.warning("interrupted before the first chunk was finished; nothing was written")
    out.result({"status": "interrupted", **result.to_json_dict()})


def run_single(job: Job, model_path: Path | None, out: Output) -> RunResult:
    request = check_job(job, model_path)
    describe_job(job, request, out)
    engine = load_engine(model_path, request, out)
    return run_job(engine, job, request, out)


@dataclass
class BatchSummary:
    completed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def run_batch(jobs: list[Job], skipped: list[str], model_path: Path | None, out: Output) -> BatchSummary:
    """Check every job, load once, run the valid ones; a failed item is reported and the batch goes on."""
    summary = BatchSummary(skipped=list(skipped))
    for name in skipped:
        out.info(f"skip {name}: already there", style="dim")
        out.result({"status": "skipped", "output": name})
    run_jobs(jobs, model_path, summary, out)
    out.info(
        f"batch: {len(summary.completed)} done, {len(summary.skipped)} skipped (already there), "
        f"{len(summary.failed)} failed",
        style="bold red" if summary.failed else "bold green",
    )
    return summary


def run_jobs(jobs: list[Job], model_path: Path | None, summary: BatchSummary, out: Output) -> None:
    """Check every job, load the model once, run the valid ones; failures go into `summary` and the rest go on.
    Shared by one-GPU batches and by each rank of a multi-GPU batch."""
    valid: list[tuple[Job, GenerationRequest]] = []
    for job in jobs:
        try:
            valid.append((job, check_job(job, model_path)))
        except UserInputError as err:
            _record_failure(summary, job, str(err), out)
    if not valid:
        return
    engine = load_engine(model_path, valid[0][1], out)
    for job, _ in valid:
        try:
            # Built again rather than kept from the check: holding every item's media would grow memory.
            request = job.build()
            describe_job(job, request, out)
            run_job(engine, job, request, out)
            summary.completed.append(str(job.output))
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - one broken item must not stop an unattended batch
            if debug_enabled():
                traceback.print_exc()
            message = str(err) if isinstance(err, UserInputError) else f"{type(err).__name__}: {err}"
            _record_failure(summary, job, message, out)


def _record_failure(summary: BatchSummary, job: Job, message: str, out: Output) -> None:
    summary.failed.append((str(job.output), message))
    out.failure(f"{job.label} ({job.source}): {message}")
    out.result({"status": "failed", "output": str(job.output), "error": message})

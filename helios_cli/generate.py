"""`helios generate`, `helios animate IMAGE` and `helios extend VIDEO`: text, image or video to video.

The three commands differ only in their conditioning input; all share the options in options.py and end in
`_run_one`, which builds a `Job` (config, seed, prompt, media, output) and hands it to execute.py. `generate` also
takes `--from NAME.json` (reproduce a video from its sidecar) and `--prompts FILE` (a batch, see batch_cli.py).

Exit codes: 0 done; 2 bad input (before any weights load); 130 interrupted (the finished chunks are kept);
1 a batch item failed or an internal error.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from helios_cli.batch_cli import run_prompts_file
from helios_cli.console import Output
from helios_cli.execute import Job, report_interrupted, run_single
from helios_cli.gpus import VideoSpec, multi_gpu_wanted, run_video_on_gpus
from helios_cli.inputs import load_image, load_video, resolve_output
from helios_cli.options import CommonOptions, with_common_options
from helios_cli.resolve import FromRecord, load_from_record, resolve_config
from helios_core.errors import ConfigError
from helios_core.request import GenerationRequest
from helios_core.runner import RunInterrupted
from helios_core.schedule import load_schedule

PromptArg = Annotated[
    str | None, typer.Argument(help="What the video shows (or use --schedule for timed prompts).", show_default=False)
]
EXIT_INTERRUPTED = 130
SEED_RANGE = 2**32  # numpy and torch both accept any seed below this


def random_seed() -> int:
    return secrets.randbelow(SEED_RANGE)


@with_common_options
def generate(
    prompt: PromptArg = None,
    from_sidecar: Annotated[
        Path | None,
        typer.Option("--from", help="Reproduce a video from its NAME.json sidecar (flags given here still apply)."),
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option("--prompts", help="Batch: one prompt per line, or JSONL with per-item options; --output is a "
                                       "folder; finished items are skipped."),
    ] = None,
    *,
    common: CommonOptions,
) -> None:
    """Text to video: [bold]helios generate "a red fox running through snow" --seconds 20[/bold]"""
    out = Output(json_mode=common.json, quiet=common.quiet)
    if prompts is not None:
        if prompt is not None or from_sidecar is not None or common.schedule is not None:
            raise ConfigError("--prompts runs the prompts in the file: do not also give a PROMPT, --from or --schedule")
        raise typer.Exit(run_prompts_file(prompts, common, out))
    record = load_from_record(from_sidecar) if from_sidecar is not None else None
    if prompt is None and common.schedule is None and record is None:
        raise ConfigError('missing PROMPT: helios generate "a red fox running through snow" (or --schedule FILE, '
                          "--from NAME.json, --prompts FILE)")
    image = record.image if record is not None else None
    video = record.video if record is not None else None
    _run_one(prompt, common, out, image_path=image, video_path=video, record=record)


@with_common_options
def animate(
    image: Annotated[Path, typer.Argument(help="The image the video starts from.", show_default=False)],
    prompt: PromptArg = None,
    *,
    common: CommonOptions,
) -> None:
    """Image to video: [bold]helios animate photo.jpg "the waves roll in"[/bold]"""
    out = Output(json_mode=common.json, quiet=common.quiet)
    _require_prompt(prompt, common, f'helios animate {image} "what happens next"')
    _run_one(prompt, common, out, image_path=image)


@with_common_options
def extend(
    video: Annotated[Path, typer.Argument(help="The video to continue from its end.", show_default=False)],
    prompt: PromptArg = None,
    *,
    common: CommonOptions,
) -> None:
    """Video to video: continue a clip, [bold]helios extend clip.mp4 "the car drives into the tunnel"[/bold]"""
    out = Output(json_mode=common.json, quiet=common.quiet)
    _require_prompt(prompt, common, f'helios extend {video} "what happens next"')
    _run_one(prompt, common, out, video_path=video)


def _require_prompt(prompt: str | None, common: CommonOptions, example: str) -> None:
    if prompt is None and common.schedule is None:
        raise ConfigError(f"missing PROMPT: {example} (or --schedule FILE)")


def _run_one(
    prompt: str | None,
    common: CommonOptions,
    out: Output,
    *,
    image_path: Path | None = None,
    video_path: Path | None = None,
    record: FromRecord | None = None,
) -> None:
    """Resolve, check (no weights yet), load, generate; Ctrl-C keeps the finished chunks and exits 130."""
    # The seed is fixed once, here, so that every GPU worker of a --gpus run makes the same video.
    common = replace(common, seed=resolve_seed(common, record))
    job, model_path = build_single_job(prompt, common, image_path=image_path, video_path=video_path, record=record)
    if multi_gpu_wanted(common):
        spec = VideoSpec(prompt, common, image_path, video_path, record.path if record is not None else None)
        raise typer.Exit(run_video_on_gpus(spec, job, model_path, out))
    try:
        run_single(job, model_path, out)
    except RunInterrupted as stop:
        report_interrupted(stop.result, out)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def resolve_seed(common: CommonOptions, record: FromRecord | None) -> int:
    """--seed, else the seed recorded in --from, else a fresh random one."""
    if common.seed is not None:
        return common.seed
    return record.seed if record is not None else random_seed()


def build_single_job(
    prompt: str | None,
    common: CommonOptions,
    *,
    image_path: Path | None = None,
    video_path: Path | None = None,
    record: FromRecord | None = None,
) -> tuple[Job, Path | None]:
    """The job for one video and its model folder (None = the embedded model); `common.seed` must be set."""
    if prompt is not None and common.schedule is not None:
        raise ConfigError("give a PROMPT or --schedule, not both")
    config = resolve_config(common.config_flags(), base=record.config if record is not None else None)
    if common.schedule is not None:
        schedule = load_schedule(common.schedule)
    elif prompt is None and record is not None:
        schedule = record.schedule
    else:
        schedule = ()
    text = prompt if prompt is not None else (record.prompt if record is not None and not schedule else "")
    seed = resolve_seed(common, record)
    model_path = common.model.expanduser() if common.model is not None else None
    if model_path is None and record is not None:
        model_path = record.model_path  # --model and HELIOS_MODEL win over the model recorded in --from
    title = text or (schedule[0].prompt if schedule else "")
    output = resolve_output(common.output, title, seed)

    def build() -> GenerationRequest:
        return GenerationRequest(
            config=config,
            seed=seed,
            prompt=text,
            schedule=schedule,
            image=load_image(image_path, config) if image_path is not None else None,
            video=load_video(video_path, config) if video_path is not None else None,
            video_fps=config.video.fps if video_path is not None else None,
        )

    job = Job(
        label=output.name,
        output=output,
        overwrite=common.overwrite,
        build=build,
        metadata=_metadata(model_path, image_path, video_path, record),
    )
    return job, model_path


def _metadata(
    model_path: Path | None, image_path: Path | None, video_path: Path | None, record: FromRecord | None
) -> dict[str, object]:
    """Sidecar extras that `--from` needs to reproduce the video: the model folder and the input files."""
    inputs = {}
    if image_path is not None:
        inputs["image"] = str(image_path.absolute())
    if video_path is not None:
        inputs["video"] = str(video_path.absolute())
    data: dict[str, object] = {
        "model_path": str(model_path.absolute()) if model_path is not None else None,
        "inputs": inputs,
    }
    if record is not None:
        data["reproduced_from"] = str(record.path.absolute())
    return data

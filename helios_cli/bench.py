"""`helios bench`: speed and quality figures. Human output first; the last stdout line is one JSON object.

`helios bench quality VIDEO...` scores any MP4 (ours or another model's) with model-free metrics and writes a PNG
plot per video. `helios bench speed` lands with the GPU speed work; until then it says so and exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from helios_core.errors import UserInputError


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(help="Measure speed or video quality; the last output line is one JSON object.",
                            no_args_is_help=True)

    @bench_app.command("quality")
    def quality(
        videos: Annotated[list[Path], typer.Argument(help="MP4 files to score.")],
        plot_dir: Annotated[Path | None, typer.Option(help="Write NAME.quality.png here (default: next to each video).")]
        = None,
        chunk_frames: Annotated[int, typer.Option(help="Pixel frames per chunk, for seam scores.")] = 33,
        no_plot: Annotated[bool, typer.Option("--no-plot", help="Skip the PNG plots.")] = False,
    ) -> None:
        """Motion, smoothness, flicker, first-vs-last-15% drift and chunk seams of each video, with a plot."""
        from helios_core.bench.quality import TABLE_COLUMNS, format_table, plot_report, score_video

        if chunk_frames < 2:
            raise UserInputError(f"--chunk-frames must be at least 2, got {chunk_frames}")
        for video in videos:
            if not video.is_file():
                raise UserInputError(f"video {video} does not exist")
        if plot_dir is not None:
            plot_dir.mkdir(parents=True, exist_ok=True)
        reports = []
        for video in videos:
            report = score_video(video, chunk_pixel_frames=chunk_frames)
            if not no_plot:
                plot_report(report, (plot_dir or video.parent) / f"{video.stem}.quality.png")
            reports.append(report)
        table = Table(title="Helios quality report")
        for _key, header in TABLE_COLUMNS:
            table.add_column(header)
        for row in format_table(reports):
            table.add_row(*(str(row[key]) for key, _ in TABLE_COLUMNS))
        Console(stderr=False).print(table)
        print(json.dumps({"bench": "quality", "videos": [r.to_dict() for r in reports]}))

    @bench_app.command("speed")
    def speed(
        preset: Annotated[str, typer.Option(help="base, mid or distilled.")] = "distilled",
        steps: Annotated[str | None, typer.Option(help="Steps per pyramid stage, e.g. 1,1,1 (default: the preset's).")]
        = None,
        height: Annotated[int, typer.Option(help="Height in pixels.")] = 384,
        width: Annotated[int, typer.Option(help="Width in pixels.")] = 640,
        frames: Annotated[int, typer.Option(help="Frames per timed video.")] = 165,
        tiny: Annotated[bool, typer.Option("--tiny", help="A tiny random model instead of the full 14B.")] = False,
        compile: Annotated[bool, typer.Option("--compile", help="Regional torch.compile on both sides.")] = False,
        no_diffusers: Annotated[bool, typer.Option("--no-diffusers", help="Skip diffusers' pipeline.")] = False,
        device: Annotated[str, typer.Option(help="cuda, cuda:N or (with --tiny) cpu.")] = "cuda",
        repeats: Annotated[int, typer.Option(help="Timed videos per side.")] = 1,
        sets: Annotated[list[str] | None, typer.Option("--set", help="Config override KEY=VALUE (repeatable).")] = None,
    ) -> None:
        """Full-size random-weight speed of our engine vs diffusers' Helios pipeline, in one process."""
        from helios_core.bench.speed import format_table as speed_table
        from helios_core.bench.speed import parse_steps, run_speed_bench
        from helios_core.presets import parse_set_option

        overrides = dict(parse_set_option(item) for item in sets or [])
        result = run_speed_bench(preset=preset, steps=parse_steps(steps), height=height, width=width,
                                 num_frames=frames, full_size=not tiny, compile=compile,
                                 with_diffusers=not no_diffusers, device=device, repeats=repeats, overrides=overrides)
        print(speed_table(result))
        print(json.dumps(result))

    app.add_typer(bench_app, name="bench")

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

    @bench_app.command("speed", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def speed(ctx: typer.Context) -> None:
        """Speed on the GPU (not available yet in this version)."""
        raise UserInputError("`helios bench speed` is not available yet in this version of Helios")

    app.add_typer(bench_app, name="bench")

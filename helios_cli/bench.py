"""`helios bench`: speed and quality figures. Human output first; the last stdout line is one JSON object.

`helios bench quality VIDEO...` scores any MP4 (ours or another model's) with model-free metrics and writes a PNG
plot per video. `helios bench quality --world` generates held-out prompts of the procedural world with a model (and
`--compare` models) and judges them against the issue-6 targets (helios_core.bench.world_quality).
`helios bench speed` times our engine against diffusers' pipeline, or with --model the user's own `helios generate`
start-up included (bench_speed_model.py); `helios bench train` times training steps (bench_train.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from helios_cli.bench_speed_model import (
    SpeedModelOpt, SpeedPromptOpt, SpeedSecondsOpt, SpeedSeedOpt, run_model_bench, wants_model_bench,
)
from helios_cli.bench_train import add_train_command
from helios_core.errors import ConfigError, UserInputError

WORLD = "World bench (--world)"


def _world_option(*names: str, help: str, **extra: object) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help, rich_help_panel=WORLD, show_default=False, **extra)


WorldFlag = Annotated[bool, _world_option("--world", help="Generate held-out world prompts with --model and judge "
                                          "them: adherence, drift vs the world's clip, seams.")]
WorldModelOpt = Annotated[str | None, _world_option("--model", envvar="HELIOS_MODEL",
                                                    help="PATH, LABEL=PATH or 'default' (the embedded model).")]
WorldPromptsOpt = Annotated[int | None, _world_option("--prompts", min=1, help="Held-out prompts (default 50).")]
WorldSecondsOpt = Annotated[float | None, _world_option("--seconds", help="Seconds per video (default 60).")]
WorldSeedOpt = Annotated[int | None, _world_option("--seed", min=0, help="Seed of the prompt set and of every video "
                                                   "(default 0).")]
WorldOutOpt = Annotated[Path | None, _world_option("--out", help="Folder for the MP4s and world_quality.json "
                                                   "(default outputs/world-quality).")]
WorldPresetOpt = Annotated[str | None, _world_option("--preset", help="Preset (default: the embedded model's, "
                                                    "'default').")]
WorldSetOpt = Annotated[list[str] | None, _world_option("--set", metavar="KEY=VALUE", help="Config override, "
                                                        "repeatable (the size defaults to 128x256).")]
WorldCompareOpt = Annotated[list[str] | None, _world_option("--compare", metavar="LABEL=MODEL_PATH",
                                                            help="Also bench this model on the same prompts "
                                                                 "(repeatable).")]
WorldNoVideosOpt = Annotated[bool, _world_option("--no-videos", help="Measure without writing MP4s.")]
WorldVaeCeilingOpt = Annotated[bool, _world_option("--vae-ceiling", help="Add a row LABEL-vae: the world's clips "
                                                   "through --model's VAE, the most its transformer can score.")]
WorldOverwriteOpt = Annotated[bool, _world_option("--overwrite", help="Replace an earlier run's files in --out.")]


def register(app: typer.Typer) -> None:
    bench_app = typer.Typer(help="Measure speed or video quality; the last output line is one JSON object.",
                            no_args_is_help=True)

    @bench_app.command("quality")
    def quality(
        videos: Annotated[list[Path] | None, typer.Argument(help="MP4 files to score (or --world).",
                                                            show_default=False)] = None,
        plot_dir: Annotated[Path | None, typer.Option(help="Write NAME.quality.png here (default: next to each video).")]
        = None,
        chunk_frames: Annotated[int, typer.Option(help="Pixel frames per chunk, for seam scores.")] = 33,
        no_plot: Annotated[bool, typer.Option("--no-plot", help="Skip the PNG plots.")] = False,
        world: WorldFlag = False,
        model: WorldModelOpt = None,
        prompts: WorldPromptsOpt = None,
        seconds: WorldSecondsOpt = None,
        seed: WorldSeedOpt = None,
        out: WorldOutOpt = None,
        preset: WorldPresetOpt = None,
        sets: WorldSetOpt = None,
        compare: WorldCompareOpt = None,
        no_videos: WorldNoVideosOpt = False,
        overwrite: WorldOverwriteOpt = False,
        vae_ceiling: WorldVaeCeilingOpt = False,
    ) -> None:
        """Motion, smoothness, flicker, first-vs-last-15% drift and chunk seams of each video, with a plot; or, with
        --world, a model judged on held-out world prompts."""
        from helios_core.bench.quality import TABLE_COLUMNS, format_table, plot_report, score_video

        world_only = {"--prompts": prompts, "--seconds": seconds, "--seed": seed, "--out": out, "--preset": preset,
                      "--set": sets, "--compare": compare, "--no-videos": no_videos or None,
                      "--overwrite": overwrite or None, "--vae-ceiling": vae_ceiling or None}
        if world:
            if videos:
                raise UserInputError("give MP4 files to score or --world, not both")
            _world_quality(model, prompts, seconds, seed, out, preset, sets or [], compare or [], no_videos, overwrite,
                           vae_ceiling)
            return
        given = [name for name, value in world_only.items() if value is not None]
        if given:
            raise UserInputError(f"{', '.join(given)} only apply with --world")
        if not videos:
            raise UserInputError("give the MP4 files to score, or --world to generate and judge world prompts")
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
        ctx: typer.Context,
        preset: Annotated[str, typer.Option(help="base, mid or distilled.")] = "distilled",
        steps: Annotated[str | None, typer.Option(help="Steps per pyramid stage, e.g. 1,1,1 (default: the preset's).")]
        = None,
        height: Annotated[int, typer.Option(help="Height in pixels.")] = 384,
        width: Annotated[int, typer.Option(help="Width in pixels.")] = 640,
        frames: Annotated[int, typer.Option(help="Frames per timed video.")] = 165,
        tiny: Annotated[bool, typer.Option("--tiny", help="A tiny random model instead of the full 14B.")] = False,
        compile: Annotated[bool, typer.Option("--compile", help="Regional torch.compile on both sides.")] = False,
        no_diffusers: Annotated[bool, typer.Option("--no-diffusers", help="Skip diffusers' pipeline.")] = False,
        device: Annotated[str, typer.Option(help="cuda, cuda:N or (with --tiny) cpu; with --model also auto (its "
                                                 "default).")] = "cuda",
        repeats: Annotated[int, typer.Option(help="Timed videos per side.")] = 1,
        sets: Annotated[list[str] | None, typer.Option("--set", help="Config override KEY=VALUE (repeatable).")] = None,
        model: SpeedModelOpt = None,
        seconds: SpeedSecondsOpt = None,
        prompt: SpeedPromptOpt = None,
        seed: SpeedSeedOpt = None,
    ) -> None:
        """Full-size random-weight speed of our engine vs diffusers' Helios pipeline, in one process; or, with
        --model, the wall clock of a real `helios generate` run, start-up included, against the video's length."""
        if wants_model_bench(ctx, model):
            run_model_bench(ctx, model, seconds=seconds, prompt=prompt, seed=seed, preset=preset, device=device,
                            sets=sets or [])
            return
        from helios_core.bench.speed import format_table as speed_table
        from helios_core.bench.speed import parse_steps, run_speed_bench
        from helios_core.presets import parse_set_option

        overrides = dict(parse_set_option(item) for item in sets or [])
        result = run_speed_bench(preset=preset, steps=parse_steps(steps), height=height, width=width,
                                 num_frames=frames, full_size=not tiny, compile=compile,
                                 with_diffusers=not no_diffusers, device=device, repeats=repeats, overrides=overrides)
        print(speed_table(result))
        print(json.dumps(result))

    add_train_command(bench_app)
    app.add_typer(bench_app, name="bench")


def _world_model(value: str | None, what: str) -> tuple[str | None, Path | None]:
    """`LABEL=PATH`, `PATH` or `default` -> (label or None, folder or None for the embedded model)."""
    label, sep, path = (value or "default").partition("=")
    if not sep:
        label, path = None, label
    if sep and not (label and path):
        raise ConfigError(f"{what} expects LABEL=MODEL_PATH, got '{value}'")
    return label, None if path == "default" else Path(path)


def _world_quality(model: str | None, prompts: int | None, seconds: float | None, seed: int | None, out: Path | None,
                   preset: str | None, sets: list[str], compare: list[str], no_videos: bool, overwrite: bool,
                   vae_ceiling: bool) -> None:
    from helios_cli.resolve import EMBEDDED_PRESET, ConfigFlags, resolve_config
    from helios_core.bench.world_quality import (
        DEFAULT_OUT_DIR, DEFAULT_PROMPTS, DEFAULT_SECONDS, REPORT_NAME, TARGET_ADHERENCE, TARGET_DRIFT_RATIO,
        TARGET_SEAM_RATIO, WORLD_HEIGHT, WORLD_TABLE_COLUMNS, WORLD_WIDTH, WorldModel, WorldQualitySettings,
        run_world_quality, world_table_rows,
    )

    # The world's defaults go first among the --set items, so the user's own --set (and --seconds) win. Every row
    # uses the embedded model's preset unless --preset says otherwise: the bench is for world-trained models, and an
    # ablation row must not get other settings just because it is named by a folder instead of 'default'.
    defaults = (f"video.height={WORLD_HEIGHT}", f"video.width={WORLD_WIDTH}", f"video.seconds={DEFAULT_SECONDS}",
                "video.num_frames=null")
    config = resolve_config(ConfigFlags(preset=preset, set_items=(*defaults, *sets), seconds=seconds,
                                        default_preset=EMBEDDED_PRESET))
    label, path = _world_model(model, "--model")
    # An unlabelled model is named after its folder (a label names the folder its videos go to).
    models = [WorldModel(label or (re.sub(r"[^A-Za-z0-9._-]", "-", path.name) if path else "default"), path)]
    for item in compare:
        label, path = _world_model(item, "--compare")
        if label is None:
            raise ConfigError(f"--compare expects LABEL=MODEL_PATH, got '{item}'")
        models.append(WorldModel(label, path))
    settings = WorldQualitySettings(
        config=config, models=tuple(models), num_prompts=prompts or DEFAULT_PROMPTS, seed=seed or 0,
        out_dir=out or DEFAULT_OUT_DIR, write_videos=not no_videos, overwrite=overwrite, vae_ceiling=vae_ceiling,
    )
    console = Console(highlight=False, soft_wrap=True)

    def on_video(label: str, item, measures, ratios) -> None:
        position = f"[{label}] {item.index + 1}/{settings.num_prompts}"  # printed as plain text, not rich markup
        if ratios is None:
            console.print(Text(f"{position} adherence {measures.adherence:.2f} (the world's own clip)", style="dim"))
        else:
            console.print(Text(f"{position} adherence {measures.adherence:.2f}, drift x{max(ratios.values()):.2f}, "
                               f"seams x{measures.seam_ratio:.2f}: {item.prompt}"))

    report = run_world_quality(settings, on_video=on_video)
    table = Table(title=f"Helios world quality: {settings.num_prompts} held-out prompts, "
                        f"{report.settings['seconds']:g} s each")
    for _key, header in WORLD_TABLE_COLUMNS:
        table.add_column(header)
    for row in world_table_rows(report):
        table.add_row(*(str(row[key]) for key, _ in WORLD_TABLE_COLUMNS))
    console.print(table)
    console.print(Text(f"targets: adherence >= {TARGET_ADHERENCE:.2f}, every drift <= {TARGET_DRIFT_RATIO:g}x the "
                       f"world's clip, seams <= {TARGET_SEAM_RATIO:g}x; details in {settings.out_dir / REPORT_NAME}"))
    print(json.dumps(report.to_dict(with_videos=False)))

"""`helios bench speed --model MODEL`: the options, their checks and the report (helios_core.bench.speed_model).

With --model the bench times the user's own `helios generate` (start-up included) instead of building random
models, so the random bench's shape and build options make no sense there: each one is refused by name, before
anything runs. Without --model, the options that only apply to it are refused the same way.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from helios_core.errors import ConfigError

MODEL_PANEL = "Real model (--model)"


def _model_option(*names: str, help: str, **extra: object) -> typer.models.OptionInfo:
    return typer.Option(*names, help=help, rich_help_panel=MODEL_PANEL, show_default=False, **extra)


SpeedModelOpt = Annotated[str | None, _model_option(
    "--model", help="Time `helios generate` with this model, start-up included: PATH, LABEL=PATH or 'default' (the "
                    "embedded model). Not with the random-model options (--tiny, --preset, --height, ...).")]
SpeedSecondsOpt = Annotated[float | None, _model_option("--seconds", help="Video length (default 60).")]
SpeedPromptOpt = Annotated[str | None, _model_option("--prompt", help="Prompt (default: a red circle moving left on "
                                                                      "a blue background).")]
SpeedSeedOpt = Annotated[int | None, _model_option("--seed", min=0, help="Seed (default 0).")]

# The random bench's options (parameter name -> flag): none of them reaches `helios generate`.
RANDOM_ONLY = {"steps": "--steps", "height": "--height", "width": "--width", "frames": "--frames", "tiny": "--tiny",
               "compile": "--compile", "no_diffusers": "--no-diffusers", "repeats": "--repeats"}
MODEL_ONLY = {"seconds": "--seconds", "prompt": "--prompt", "seed": "--seed"}


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user typed the option (a default value typed out counts as given, which is what we want)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def wants_model_bench(ctx: typer.Context, model: str | None) -> bool:
    """--model decides; the options that need it are refused without it."""
    if model is not None:
        return True
    needs_model = [flag for name, flag in MODEL_ONLY.items() if given(ctx, name)]
    if needs_model:
        raise ConfigError(f"{', '.join(needs_model)} only apply with --model")
    return False


def run_model_bench(ctx: typer.Context, model: str, *, seconds: float | None, prompt: str | None, seed: int | None,
                    preset: str, device: str, sets: list[str]) -> None:
    """Check every option before anything runs, time the child, print the table and the JSON line."""
    from helios_cli.bench import _world_model
    from helios_cli.console import print_error
    from helios_cli.resolve import DEFAULT_PRESET, EMBEDDED_PRESET, ConfigFlags, resolve_config
    from helios_core.bench.speed_model import (
        DEFAULT_PROMPT, DEFAULT_SECONDS, GenerateFailed, ModelSpeedSettings, model_table_rows, run_model_speed,
    )

    conflicting = [flag for name, flag in RANDOM_ONLY.items() if given(ctx, name)]
    if conflicting:
        raise ConfigError(f"{conflicting[0]} does not apply with --model (it times `helios generate` as it is; "
                          "change settings with --set KEY=VALUE)")
    label, path = _world_model(model, "--model")
    own_preset = EMBEDDED_PRESET if path is None else DEFAULT_PRESET  # what `helios generate` picks for this model
    if given(ctx, "preset") and preset != own_preset:
        raise ConfigError(f"--preset {preset} does not apply with --model: the bench runs the model with its own "
                          f"preset ({own_preset}); change settings with --set KEY=VALUE")
    seconds = seconds if seconds is not None else DEFAULT_SECONDS
    device = device if given(ctx, "device") else "auto"  # the random bench's default (cuda) is not generate's
    # The same resolution `helios generate` does, here, so a bad --set key or device fails in a moment instead of
    # after the child's imports.
    resolve_config(ConfigFlags(set_items=tuple(sets), seconds=seconds, device=device, default_preset=own_preset))
    settings = ModelSpeedSettings(
        model=path, label=label or (str(path) if path is not None else "default"), seconds=seconds,
        prompt=prompt if prompt is not None else DEFAULT_PROMPT, seed=seed if seed is not None else 0,
        device=device, sets=tuple(sets),
    ).validate()

    console = Console(highlight=False, soft_wrap=True)
    console.print(Text(f"timing `helios generate` with {settings.label}: {settings.seconds:g} s of video, start-up "
                       "included", style="bold"))
    try:
        result = run_model_speed(settings, echo=lambda line: console.print(Text(f"  {line}", style="dim")))
    except GenerateFailed as err:
        print_error(str(err))  # one line, like every other error; the child's exit code is kept
        raise typer.Exit(err.exit_code) from None
    verdict = "faster" if result["faster_than_real_time"] else "slower"
    table = Table(title=f"Helios speed, real model: {verdict} than real time (x{result['realtime_factor']:.2f})")
    table.add_column("")
    table.add_column("value")
    for header, text in model_table_rows(result):
        table.add_row(header, text)
    console.print(table)
    print(json.dumps(result))

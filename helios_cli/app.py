"""The `helios` command: the wiring table and `main()`. Commands live in their own modules.

    helios generate PROMPT         text to video (also --from NAME.json, --prompts FILE)
    helios animate IMAGE PROMPT    image to video
    helios extend VIDEO PROMPT     video to video
    helios presets [--keys]        presets and settable config keys
    helios train / helios bench    registered by their own modules
    helios --version

Every command runs inside `HeliosGroup.main` (errors.py): user mistakes are one `error:` line and exit code 2.
Nothing here imports torch; the engine is imported when a video is actually made.
"""

from __future__ import annotations

from typing import Annotated

import typer

import helios_core
from helios_cli import bench, train
from helios_cli.errors import HeliosGroup
from helios_cli.generate import animate, extend, generate
from helios_cli.presets_cmd import presets

app = typer.Typer(
    name="helios",
    cls=HeliosGroup,
    help="Helios: real-time, minute-long video generation from text, an image or a video.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    # Locals of a generation include whole frame arrays; a traceback must stay readable.
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"helios {helios_core.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Helios: real-time, minute-long video generation from text, an image or a video."""


app.command("generate")(generate)
app.command("animate")(animate)
app.command("extend")(extend)
app.command("presets")(presets)
train.register(app)
bench.register(app)


def main() -> None:
    app(prog_name="helios")

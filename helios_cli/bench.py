"""`helios bench`: registered now so the command exists; the speed and quality issues wire it to their code.

The owners replace `register` (a command or a Typer group such as `bench quality`); app.py only calls it.
"""

from __future__ import annotations

import typer

from helios_core.errors import UserInputError

UNAVAILABLE = "`helios bench` is not available yet in this version of Helios"


def register(app: typer.Typer) -> None:
    # Any arguments are accepted, so `helios bench quality a.mp4` gets this message, not "no such command".
    @app.command(
        "bench",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help="Measure speed or video quality (not available yet).",
    )
    def bench(ctx: typer.Context) -> None:
        raise UserInputError(UNAVAILABLE)

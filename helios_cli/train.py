"""`helios train`: registered now so the command exists; the training issue wires it to helios_core's trainer.

The owner of training replaces `register` (a command or a Typer group, whichever it needs); app.py only calls it.
"""

from __future__ import annotations

import typer

from helios_core.errors import UserInputError

UNAVAILABLE = "`helios train` is not available yet in this version of Helios"


def register(app: typer.Typer) -> None:
    # Any arguments are accepted, so `helios train --stage base x.yaml` gets this message, not "no such option".
    @app.command(
        "train",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help="Train or fine-tune a Helios model (not available yet).",
    )
    def train(ctx: typer.Context) -> None:
        raise UserInputError(UNAVAILABLE)

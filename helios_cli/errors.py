"""The central error handler: user mistakes become one red line and exit code 2, never a traceback.

Mapped here, for every command at once:
- `UserInputError` (and its ConfigError, MediaError, ModelFolderError, OutputPathError) -> `error: <message>`, 2;
- click usage errors (unknown option, `--height abc`, missing argument) -> `error: <message> (see helios CMD
  --help)`, 2, instead of Typer's multi-line box, so every bad input looks the same to a script;
- Ctrl-C outside a video (e.g. while the model loads) -> `interrupted`, 130.
Anything else is a bug or an environment failure and keeps its traceback. `HELIOS_DEBUG=1` re-raises user errors
too, with their traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from helios_cli.console import print_error
from helios_core.errors import UserInputError

USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130


def _click_errors() -> tuple[type[Exception], ...]:
    """Click's exception base wherever this Typer keeps it: Typer >= 0.22 vendors click (its ClickException derives
    from typer.TyperException); older Typer raises the click package's own exceptions."""
    classes: list[type[Exception]] = []
    if hasattr(typer, "TyperException"):
        classes.append(typer.TyperException)
    try:
        import click

        classes.append(click.ClickException)
    except ImportError:
        pass
    return tuple(classes)


CLICK_ERRORS = _click_errors()


def debug_enabled() -> bool:
    return os.environ.get("HELIOS_DEBUG", "") not in ("", "0")


class HeliosGroup(TyperGroup):
    """Typer's group with the handler above around every invocation (the console script and CliRunner alike)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            # standalone_mode=False: Typer hands click's exceptions to us instead of printing its own box.
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except UserInputError as err:
            if debug_enabled():
                raise
            print_error(str(err))
            return _exit(USAGE_EXIT_CODE, standalone_mode)
        except CLICK_ERRORS as err:
            if type(err).__name__ == "NoArgsIsHelpError":
                # `helios` alone: the message is the help text; show it as it is.
                typer.echo(err.format_message())
                return _exit(0, standalone_mode)
            if debug_enabled():
                raise
            ctx = getattr(err, "ctx", None)
            if ctx is not None and err.exit_code == USAGE_EXIT_CODE:
                print_error(f"{err.format_message()} (see `{ctx.command_path} --help`)")
            else:
                print_error(err.format_message())
            return _exit(err.exit_code, standalone_mode)
        except (typer.Abort, KeyboardInterrupt):
            print_error("interrupted")
            return _exit(INTERRUPTED_EXIT_CODE, standalone_mode)
        code = result if isinstance(result, int) else 0
        return _exit(code, standalone_mode)


def _exit(code: int, standalone_mode: bool) -> int:
    if standalone_mode:
        sys.exit(code)
    return code

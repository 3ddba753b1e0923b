"""Where the CLI's words go: the only module (with progress.py) that prints.

Two streams with one rule each:
- human output (seed, plan, progress, summaries) goes to stdout, or to stderr under `--json`, so that in `--json`
  mode stdout holds nothing but one JSON object per video and the last stdout line is always a JSON result;
- errors go to stderr as one line `error: ...` (red on a terminal), never wrapped, whatever the terminal width.

Consoles are created per call, not at import, so test runners that swap sys.stdout/sys.stderr see the output.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.text import Text


def error_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """One line on stderr: `error: <message>` (newlines folded, so scripts can grep one line)."""
    one_line = " ".join(str(message).split())
    error_console().print(Text("error: ", style="bold red") + Text(one_line))


@dataclass
class Output:
    """The human/JSON output sink of one command run."""

    json_mode: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        stream = sys.stderr if self.json_mode else sys.stdout
        self.human = Console(file=stream, highlight=False, soft_wrap=True)

    @property
    def interactive(self) -> bool:
        """A live progress bar only makes sense on a terminal, and not when the user asked for quiet output."""
        return self.human.is_terminal and not self.quiet

    def info(self, message: str, style: str | None = None) -> None:
        self.human.print(Text(message, style=style or ""))

    def warning(self, message: str) -> None:
        self.human.print(Text("warning: ", style="bold yellow") + Text(message))

    def failure(self, message: str) -> None:
        """A failure that does not stop the command (a batch item); the command's exit code reports it."""
        self.human.print(Text("failed: ", style="bold red") + Text(" ".join(message.split())))

    def result(self, data: dict[str, Any]) -> None:
        """One JSON object per video on stdout in `--json` mode (nothing otherwise: the human lines said it)."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            sys.stdout.flush()

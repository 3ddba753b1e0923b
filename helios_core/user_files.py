"""Reading the small text files users hand the CLI (prompt lists, schedules), with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

from helios_core.errors import ConfigError


def read_user_text(path: Path, what: str) -> str:
    """The file's UTF-8 text; a missing, unreadable or binary file is a ConfigError such as
    "prompts file x.txt does not exist"."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror}") from None

"""Error types the engine raises.

Every error a user can cause by what they typed or pointed at is a `UserInputError`: the CLI prints its message
as one line and exits with code 2, with no traceback. Anything else is a bug or an environment failure and keeps
its traceback (HELIOS_DEBUG=1 shows it for user errors too).
"""

from __future__ import annotations


class HeliosError(Exception):
    """Base class of every error the engine raises on purpose."""

    exit_code = 1


class UserInputError(HeliosError):
    """Bad input from the user: a flag, a file, a prompt. One line, exit code 2."""

    exit_code = 2


class ConfigError(UserInputError):
    """An unknown preset, an unknown or mistyped config key, or a value out of range."""


class MediaError(UserInputError):
    """An image or video that is missing, unreadable or unusable (too short, corrupt)."""


class ModelFolderError(UserInputError):
    """A model folder with missing parts, unreadable files or tensors of the wrong shape."""


class OutputPathError(UserInputError):
    """An output path that cannot be written, or that would overwrite a file without --overwrite."""

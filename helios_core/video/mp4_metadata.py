"""MP4 metadata tags: which keys survive ffmpeg's mp4 muxer, how to pass them, and how to read them back.

Invariants:
- Only keys in MP4_METADATA_KEYS are accepted. ffmpeg's mp4 muxer silently drops any other key (a custom key
  needs `-movflags +use_metadata_tags`, which rewrites even the standard tags into QuickTime `mdta` keys that many
  players ignore), so an unknown key is refused up front instead of vanishing. Put structured data in `comment`
  as a JSON string.
- Values travel as ffmpeg command-line arguments, so each must fit in one argument (Linux: 128 KiB) and hold no NUL.
"""

from __future__ import annotations

from pathlib import Path

from helios_core.errors import MediaError
from helios_core.video.ffmpeg_tools import run_ffmpeg
from helios_core.video.reader import require_file

# Checked by tests/video/test_video_writer.py: each of these reads back unchanged from a finished file.
MP4_METADATA_KEYS = frozenset(
    {
        "title", "comment", "description", "synopsis", "keywords", "artist", "album_artist", "composer", "album",
        "date", "genre", "copyright", "grouping", "lyrics", "show", "episode_id", "network",
    }
)
# Linux limits one argument to 128 KiB (MAX_ARG_STRLEN); stay clearly below it.
MAX_METADATA_VALUE_BYTES = 100_000


def validate_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """Return a copy of `metadata` (empty for None); ValueError for an unknown key or an unusable value."""
    checked: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if key not in MP4_METADATA_KEYS:
            raise ValueError(
                f"MP4 metadata key {key!r} would be dropped by the mp4 muxer; use one of "
                f"{sorted(MP4_METADATA_KEYS)} (put structured data in 'comment' as JSON)"
            )
        if not isinstance(value, str):
            raise ValueError(f"MP4 metadata value for {key!r} must be a str, got {type(value).__name__}")
        if "\0" in value or len(value.encode("utf-8")) > MAX_METADATA_VALUE_BYTES:
            raise ValueError(
                f"MP4 metadata value for {key!r} must hold no NUL and be under {MAX_METADATA_VALUE_BYTES} bytes"
            )
        checked[key] = value
    return checked


def metadata_arguments(metadata: dict[str, str]) -> list[str]:
    """ffmpeg output options that set each tag (`-metadata key=value`; ffmpeg splits at the first '=')."""
    arguments: list[str] = []
    for key, value in metadata.items():
        arguments += ["-metadata", f"{key}={value}"]
    return arguments


def parse_ffmetadata(text: str) -> dict[str, str]:
    """Global tags from ffmpeg's FFMETADATA1 text (stream and chapter sections are ignored).

    Written by hand because no library reads this format: a backslash escapes the next character ('=', ';',
    '#', backslash, or a newline that continues the value), and ';' or '#' at a line start begins a comment.
    """
    # Split into logical lines of (character, was_escaped) pairs, so an escaped '=' or newline is plain text.
    lines: list[list[tuple[str, bool]]] = [[]]
    characters = iter(text)
    for character in characters:
        if character == "\\":
            lines[-1].append((next(characters, ""), True))
        elif character == "\n":
            lines.append([])
        else:
            lines[-1].append((character, False))
    tags: dict[str, str] = {}
    for line in lines:
        if not line or (not line[0][1] and line[0][0] in ";#"):
            continue
        if line[0] == ("[", False):  # a [STREAM] or [CHAPTER] section: the global tags are over
            break
        separator_index = next((i for i, (char, escaped) in enumerate(line) if char == "=" and not escaped), None)
        if separator_index is not None:
            key = "".join(char for char, _ in line[:separator_index])
            tags[key] = "".join(char for char, _ in line[separator_index + 1 :])
    return tags


def read_video_metadata(path: Path) -> dict[str, str]:
    """The global metadata tags of a video file (title, comment, ..., plus the container's own keys)."""
    path = require_file(path, "video")
    try:
        text = run_ffmpeg(["-i", str(path), "-f", "ffmetadata", "-"], purpose=f"read the tags of {path}")
    except RuntimeError as error:
        last_line = str(error).strip().splitlines()[-1]
        raise MediaError(f"cannot read the tags of video {path}: {last_line}") from error
    return parse_ffmetadata(text.decode("utf-8", errors="replace"))

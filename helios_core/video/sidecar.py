"""The JSON sidecar next to each video (`NAME.json` beside `NAME.mp4`): every setting that made the video.

Invariants:
- Written atomically: JSON goes to a temporary file in the same folder, is flushed to disk, then renamed over
  `NAME.json` (os.replace), so a crash leaves the old sidecar or the new one, never half a file.
- Paths and numpy scalars/arrays are written as plain JSON; anything else JSON cannot hold raises TypeError (a
  programming error) before any file is touched.
- Reading a missing or malformed sidecar raises MediaError naming the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from helios_core.errors import MediaError, OutputPathError


def sidecar_path(video_path: Path) -> Path:
    """`NAME.json` next to `NAME.mp4`."""
    return Path(video_path).with_suffix(".json")


def _to_json_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"sidecar value of type {type(value).__name__} is not JSON-serialisable: {value!r}")


def write_sidecar(video_path: Path, data: dict[str, Any]) -> Path:
    """Write `data` as pretty JSON to the sidecar of `video_path`, atomically; return the sidecar path."""
    target = sidecar_path(video_path)
    # Serialise first, so a TypeError never leaves a temporary file behind.
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_to_json_value) + "\n"
    temporary_path: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
        ) as temporary:
            temporary_path = Path(temporary.name)
            temporary.write(text)
            temporary.flush()
            os.fsync(temporary.fileno())
        os.chmod(temporary_path, 0o644)  # NamedTemporaryFile makes 0600 files; a sidecar is as public as its video
        os.replace(temporary_path, target)
    except OSError as error:
        if temporary_path is not None:
            temporary_path.unlink(missing_ok=True)
        raise OutputPathError(f"cannot write sidecar {target}: {error.strerror or error}") from error
    return target


def read_sidecar(path: Path) -> dict[str, Any]:
    """Load a sidecar. `path` is the `NAME.json` itself, or the video (`NAME.mp4`) whose sidecar to read."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        path = sidecar_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise MediaError(f"sidecar {path} not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise MediaError(f"cannot read sidecar {path}: {error}") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise MediaError(f"sidecar {path} is not valid JSON (line {error.lineno}: {error.msg})") from error
    if not isinstance(data, dict):
        raise MediaError(f"sidecar {path} must hold a JSON object, found {type(data).__name__}")
    return data

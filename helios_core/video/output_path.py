"""Where a video is written, and the checks made before any work starts.

Naming: the finished video is `NAME.mp4`; while it is being written it is `NAME.partial.mp4` (playable at every
chunk boundary); the last step writes `.NAME.finalizing.mp4` and renames it, so `NAME.mp4` only ever appears whole.

`check_output_path` has no side effects (it creates and deletes one anonymous temporary file), so the CLI can call
it before loading weights: a user should learn about an existing file or a read-only folder in a second, not
after minutes of model loading.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from helios_core.errors import OutputPathError

VIDEO_SUFFIX = ".mp4"


def partial_path_for(path: Path) -> Path:
    """`NAME.partial.mp4` for `NAME.mp4`: the file ffmpeg writes while the video is generated."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def finalizing_path_for(path: Path) -> Path:
    """`.NAME.finalizing.mp4`: the hidden file the final remux writes before it is renamed to `NAME.mp4`."""
    return path.with_name(f".{path.stem}.finalizing{path.suffix}")


def nearest_existing_folder(folder: Path) -> Path:
    """`folder` itself if it exists, else its closest existing ancestor (where missing folders would be made)."""
    candidate = folder.absolute()
    while not candidate.exists() and candidate != candidate.parent:
        candidate = candidate.parent
    return candidate


def check_output_path(path: Path, overwrite: bool) -> None:
    """Raise OutputPathError unless a video can be written to `path` (a `NAME.mp4` file).

    Refuses: a name not ending in .mp4, a folder, an existing `NAME.mp4` or a `NAME.partial.mp4` left by an
    interrupted run (unless `overwrite`), and a folder that cannot be created or written.
    """
    path = Path(path)
    if path.suffix.lower() != VIDEO_SUFFIX:
        raise OutputPathError(f"output {path} must be a file name ending in .mp4")
    if path.is_dir():
        raise OutputPathError(f"output {path} is a folder; pass a file name ending in .mp4")
    if path.exists() and not overwrite:
        raise OutputPathError(f"output {path} already exists; pass --overwrite to replace it, or choose another name")
    partial_path = partial_path_for(path)
    if partial_path.exists() and not overwrite:
        raise OutputPathError(
            f"{partial_path} exists (left by an interrupted run); move it away, or pass --overwrite to replace it"
        )
    folder = nearest_existing_folder(path.parent)
    if not folder.is_dir():
        raise OutputPathError(f"cannot create the folder of output {path}: {folder} is a file, not a folder")
    # Creating a real file is the reliable test: os.access answers True for root and misjudges ACLs and network mounts.
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputPathError(f"cannot write output {path}: folder {folder} is not writable ({reason})") from error

"""Read videos and images from disk as uint8 RGB arrays, through imageio-ffmpeg's ffmpeg and Pillow.

Invariants:
- Every failure a user can cause (missing file, a folder, unreadable or corrupt data, no video frames) raises
  MediaError with one line naming the file; nothing here prints.
- Frames are (H, W, 3) uint8 RGB arrays that the caller owns (writable, not views of a shared buffer).
- Memory stays bounded where it matters: `iter_video_frames` holds one frame, `read_video(last_frames=N)` holds at
  most N frames, because video-to-video continues from the END of a possibly long input clip.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from helios_core.errors import MediaError


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` learns without decoding pixels into memory."""

    num_frames: int
    fps: float
    width: int
    height: int


@dataclass(frozen=True, eq=False)
class VideoClip:
    """Decoded frames, (T, H, W, 3) uint8 RGB, and the rate they were recorded at."""

    pixel_frames: np.ndarray
    fps: float


def require_file(path: Path, kind: str) -> Path:
    """`path` as a Path if it is an existing file; MediaError naming it (as `kind`: "video", "image") otherwise."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{kind} {path} not found")
    if not path.is_file():
        raise MediaError(f"{kind} {path} is not a file")
    return path


def _short_reason(error: BaseException) -> str:
    """The most telling line of an imageio-ffmpeg error, which embeds ffmpeg's whole banner and log."""
    # ffmpeg prefixes lines with the component that logged them ("[in#0 @ 0x55d4...] "): noise for a user.
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", line.strip()) for line in str(error).splitlines() if line.strip()]
    for marker in ("Invalid data", "moov atom not found", "does not contain any stream", "matches no streams",
                   "Permission denied", "End of file"):
        for line in lines:
            if marker in line:
                return line
    return lines[-1] if lines else type(error).__name__


def _open_frame_stream(path: Path) -> tuple[dict, Iterator[bytes]]:
    """Start decoding `path`; return ffmpeg's header info (size, fps) and an iterator of raw RGB frame bytes."""
    path = require_file(path, "video")
    frame_bytes = imageio_ffmpeg.read_frames(str(path))
    try:
        header = next(frame_bytes)
    except (OSError, RuntimeError, StopIteration) as error:
        frame_bytes.close()
        raise MediaError(f"cannot read video {path}: {_short_reason(error)}") from error
    return header, frame_bytes


def _frames_from(path: Path, header: dict, frame_bytes: Iterator[bytes]) -> Iterator[np.ndarray]:
    width, height = header["size"]
    try:
        for raw_frame in frame_bytes:
            # np.frombuffer gives a read-only view of a bytes object; copy so the caller may edit frames in place.
            yield np.frombuffer(raw_frame, dtype=np.uint8).reshape(height, width, 3).copy()
    except RuntimeError as error:
        raise MediaError(f"cannot decode video {path}: {_short_reason(error)}") from error
    finally:
        frame_bytes.close()  # stops ffmpeg when the caller stops early


def iter_video_frames(path: Path) -> Iterator[np.ndarray]:
    """Yield the frames of a video one at a time as (H, W, 3) uint8 RGB arrays."""
    header, frame_bytes = _open_frame_stream(path)
    yield from _frames_from(Path(path), header, frame_bytes)


def probe_video(path: Path) -> VideoInfo:
    """Frame count (exact: ffmpeg decodes the stream to count it), fps and size of a video, without keeping pixels."""
    header, frame_bytes = _open_frame_stream(path)
    frame_bytes.close()
    width, height = header["size"]
    try:
        num_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except RuntimeError as error:
        raise MediaError(f"cannot read video {path}: {_short_reason(error)}") from error
    if not num_frames:
        raise MediaError(f"video {path} has no frames")
    if not header.get("fps"):
        raise MediaError(f"video {path} has no frame rate; re-encode it with a fixed frame rate")
    return VideoInfo(num_frames=int(num_frames), fps=float(header["fps"]), width=int(width), height=int(height))


def read_video(path: Path, *, max_frames: int | None = None, last_frames: int | None = None) -> VideoClip:
    """Decode a video into memory: all frames, the first `max_frames`, or only the last `last_frames`.

    `last_frames` keeps a ring buffer of N frames while decoding, so a long clip never sits in memory whole.
    """
    if max_frames is not None and last_frames is not None:
        raise ValueError("pass max_frames or last_frames, not both")
    for name, value in (("max_frames", max_frames), ("last_frames", last_frames)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    header, frame_bytes = _open_frame_stream(path)
    frames = _frames_from(Path(path), header, frame_bytes)
    kept: collections.deque[np.ndarray] | list[np.ndarray]
    if last_frames is not None:
        kept = collections.deque(frames, maxlen=last_frames)
    else:
        kept = []
        for frame in frames:
            kept.append(frame)
            if max_frames is not None and len(kept) == max_frames:
                break
        frames.close()
    if not kept:
        raise MediaError(f"video {path} has no frames")
    if not header.get("fps"):
        raise MediaError(f"video {path} has no frame rate; re-encode it with a fixed frame rate")
    return VideoClip(pixel_frames=np.stack(list(kept)), fps=float(header["fps"]))


def read_image(path: Path) -> np.ndarray:
    """Load an image as (H, W, 3) uint8 RGB, upright per its EXIF orientation (alpha is dropped, as diffusers does)."""
    path = require_file(path, "image")
    try:
        with Image.open(path) as image:
            # Phone photos store pixels sideways plus an EXIF rotation flag; apply it so I2V sees what the user saw.
            upright = ImageOps.exif_transpose(image)
            return np.array(upright.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError as error:
        raise MediaError(f"image {path} is not an image Pillow can read (corrupt, or an unknown format)") from error
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise MediaError(f"cannot read image {path}: {error}") from error

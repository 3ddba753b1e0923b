"""Stream uint8 RGB frames into an H.264 MP4 while a video is generated, chunk by chunk.

Pipeline (all three run at once, so encoding overlaps generation):

    write_frames(chunk) --> chunk relay process --> ffmpeg (libx264) --> NAME.partial.mp4 (fragmented MP4)
    finalize()          --> ffmpeg stream copy + faststart + tags --> NAME.mp4, then NAME.partial.mp4 is deleted

Invariants:
- A keyframe, and so a new MP4 fragment, starts every `frames_per_fragment` frames (33 = one Helios chunk). A
  fragmented file is playable up to its last complete fragment, so when chunks are written in multiples of
  `frames_per_fragment`, NAME.partial.mp4 always decodes to a whole number of chunks.
- ffmpeg and the relay run in their own session (`start_new_session=True`): Ctrl-C in the terminal reaches only
  this process, which then finalises. If this process dies (even by SIGKILL), the relay sees end of input, drops
  any chunk cut short, and ffmpeg drains what it has and closes the last fragment.
- NAME.mp4 appears only complete (remux to a hidden file, then rename); until then an older NAME.mp4 is untouched.
- ffmpeg's stderr goes to a temporary file; a failure raises RuntimeError with its tail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from helios_core.errors import ConfigError, OutputPathError
from helios_core.video.chunk_relay import CHUNK_HEADER
from helios_core.video.ffmpeg_tools import ffmpeg_exe, read_log_tail, run_ffmpeg
from helios_core.video.mp4_metadata import metadata_arguments, validate_metadata
from helios_core.video.output_path import (
    check_output_path,
    finalizing_path_for,
    partial_path_for,
)

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# CRF 0 makes x264 switch to the lossless High 4:4:4 profile even for yuv420p, which most players cannot play.
MIN_CRF, MAX_CRF = 1, 51
RELAY_SCRIPT = Path(__file__).with_name("chunk_relay.py")


class StreamingVideoWriter:
    """Write (T, H, W, 3) uint8 RGB chunks to `path` (NAME.mp4) as they are generated.

    Use as a context manager: a normal exit or KeyboardInterrupt finalises NAME.mp4 from the frames written so far;
    any other exception aborts and leaves the playable NAME.partial.mp4.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        crf: int = 18,
        x264_preset: str = "medium",
        frames_per_fragment: int = 33,
        metadata: dict[str, str] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.frames_per_fragment = frames_per_fragment
        self.metadata = validate_metadata(metadata)
        self._check_settings(crf, x264_preset)
        check_output_path(self.path, overwrite)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial_path_for(self.path).unlink(missing_ok=True)  # only reachable with overwrite=True

        self._frames_written = 0
        self._chunk_cut_short = False  # True while a chunk is being sent, and forever if that send was interrupted
        self._state = "open"  # open -> closed (pipeline ended) -> finalized | aborted
        self._stderr_log = tempfile.TemporaryFile()
        self._ffmpeg, self._relay = self._start_pipeline(self._encode_arguments(crf, x264_preset))

    # ----- public API -----

    @property
    def partial_path(self) -> Path:
        """NAME.partial.mp4: the fragmented file ffmpeg writes until `finalize`."""
        return partial_path_for(self.path)

    @property
    def frames_written(self) -> int:
        """Frames handed over in whole `write_frames` calls (a call cut short by Ctrl-C does not count)."""
        return self._frames_written

    def write_frames(self, frames: np.ndarray) -> None:
        """Append `frames`, a (T, H, W, 3) uint8 RGB array, all or nothing (see the chunk relay).

        Send whole chunks (T a multiple of `frames_per_fragment`, except in the last call) so that each call adds
        whole MP4 fragments and a crash leaves whole chunks.
        """
        if self._state != "open":
            raise RuntimeError(f"cannot write to {self.path}: the writer is already {self._state}")
        if self._chunk_cut_short:
            raise RuntimeError(f"cannot write to {self.path}: an earlier write_frames call was interrupted")
        expected_frame_shape = (self.height, self.width, 3)
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[1:] != expected_frame_shape:
            shape = getattr(frames, "shape", type(frames).__name__)
            raise ValueError(f"frames must be a (T, {self.height}, {self.width}, 3) array, got {shape}")
        if frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
        if frames.shape[0] == 0:
            return
        payload = np.ascontiguousarray(frames).reshape(-1)
        self._chunk_cut_short = True
        try:
            assert self._relay.stdin is not None
            self._relay.stdin.write(CHUNK_HEADER.pack(payload.nbytes))
            self._relay.stdin.write(payload.data)
            self._relay.stdin.flush()
        except BrokenPipeError as error:
            self._close_pipeline()
            raise self._pipeline_failure("encode frames") from error
        self._chunk_cut_short = False
        self._frames_written += frames.shape[0]

    def finalize(self) -> Path:
        """Finish encoding, remux to NAME.mp4 (faststart, with the tags), delete NAME.partial.mp4; return NAME.mp4."""
        if self._state in ("finalized", "aborted"):
            raise RuntimeError(f"cannot finalise {self.path}: the writer is already {self._state}")
        self._close_pipeline()
        if self._frames_written == 0:
            self._state = "aborted"
            self._stderr_log.close()
            self.partial_path.unlink(missing_ok=True)
            raise ValueError(f"cannot finalise {self.path}: no frames were written")
        if self._ffmpeg.returncode != 0 or self._relay.returncode != 0:
            raise self._pipeline_failure("encode frames")
        finalizing_path = finalizing_path_for(self.path)
        try:
            run_ffmpeg(
                ["-y", "-i", str(self.partial_path), "-map", "0", "-c", "copy", "-map_metadata", "0",
                 *metadata_arguments(self.metadata), "-movflags", "+faststart", "-f", "mp4", str(finalizing_path)],
                purpose=f"remux {self.partial_path} into {self.path}",
            )
            os.replace(finalizing_path, self.path)
        finally:
            finalizing_path.unlink(missing_ok=True)
        self.partial_path.unlink()
        self._state = "finalized"
        self._stderr_log.close()
        return self.path

    def abort(self) -> Path | None:
        """Stop cleanly and keep the playable NAME.partial.mp4; return it, or None (and delete it) if it holds no frame.

        Never raises for an ffmpeg failure: abort runs while another exception is already on its way.
        """
        if self._state == "finalized":
            raise RuntimeError(f"cannot abort {self.path}: it is already finalized")
        self._close_pipeline()
        self._state = "aborted"
        self._stderr_log.close()
        if self._frames_written == 0 or not self.partial_path.exists():
            self.partial_path.unlink(missing_ok=True)
            return None
        return self.partial_path

    def __enter__(self) -> StreamingVideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._state in ("finalized", "aborted"):
            return
        if exc_type is None:
            self.finalize()
        elif issubclass(exc_type, KeyboardInterrupt) and self._frames_written > 0:
            # Ctrl-C means "stop and keep what you have": the finished chunks become a normal NAME.mp4.
            self.finalize()
        else:
            self.abort()

    # ----- internals -----

    def _check_settings(self, crf: int, x264_preset: str) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise OutputPathError(
                f"cannot write {self.path} at {self.width}x{self.height}: H.264 (yuv420p) needs a positive, even "
                "width and height"
            )
        if not (isinstance(crf, int) and MIN_CRF <= crf <= MAX_CRF):
            raise ConfigError(f"crf must be a whole number from {MIN_CRF} to {MAX_CRF} (lower is better), got {crf}")
        if x264_preset not in X264_PRESETS:
            raise ConfigError(f"x264 preset must be one of {', '.join(X264_PRESETS)}; got {x264_preset!r}")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.frames_per_fragment < 1:
            raise ValueError(f"frames_per_fragment must be at least 1, got {self.frames_per_fragment}")

    def _encode_arguments(self, crf: int, x264_preset: str) -> list[str]:
        # An exact rational rate ("24/1", "2997/125") so frame timestamps do not drift over a minute of video.
        rate = Fraction(self.fps).limit_denominator(100_000)
        keyframe_interval = str(self.frames_per_fragment)
        return [
            ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}",
            "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0",
            # Convert with the BT.709 matrix and say so in the stream: untagged video is guessed differently by
            # browsers and players, which shifts colours.
            "-vf", "scale=out_color_matrix=bt709:out_range=tv",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
            "-c:v", "libx264", "-preset", x264_preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            # A keyframe exactly every chunk and nowhere else: fixed GOP, no scene-cut keyframes, forced IDR.
            "-g", keyframe_interval, "-keyint_min", keyframe_interval, "-sc_threshold", "0",
            "-force_key_frames", f"expr:eq(mod(n,{keyframe_interval}),0)",
            # Each keyframe starts a fragment; flush each packet so a fragment reaches the disk when it closes.
            "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-flush_packets", "1",
            *metadata_arguments(self.metadata),
            "-f", "mp4", str(self.partial_path),
        ]

    def _start_pipeline(self, ffmpeg_command: list[str]) -> tuple[subprocess.Popen, subprocess.Popen]:
        ffmpeg_input, relay_output = os.pipe()
        try:
            ffmpeg = subprocess.Popen(
                ffmpeg_command, stdin=ffmpeg_input, stdout=subprocess.DEVNULL, stderr=self._stderr_log,
                start_new_session=True,
            )
            try:
                # -I: isolated mode, the relay needs only the standard library and must not import user code.
                relay = subprocess.Popen(
                    [sys.executable, "-I", str(RELAY_SCRIPT)], stdin=subprocess.PIPE, stdout=relay_output,
                    stderr=self._stderr_log, start_new_session=True,
                )
            except BaseException:
                ffmpeg.kill()
                ffmpeg.wait()
                raise
        finally:
            # Our copies must go, or ffmpeg would never see end of input.
            os.close(ffmpeg_input)
            os.close(relay_output)
        return ffmpeg, relay

    def _close_pipeline(self) -> None:
        """Close the relay's input and wait for both processes (idempotent)."""
        if self._state != "open":
            return
        assert self._relay.stdin is not None
        try:
            self._relay.stdin.close()
        except BrokenPipeError:
            pass  # buffered bytes could not be flushed to a relay that has died; its exit code tells the story
        self._relay.wait()
        self._ffmpeg.wait()
        self._state = "closed"

    def _pipeline_failure(self, purpose: str) -> RuntimeError:
        return RuntimeError(
            f"ffmpeg failed to {purpose} for {self.path} (ffmpeg exit code {self._ffmpeg.returncode}, relay exit "
            f"code {self._relay.returncode}):\n{read_log_tail(self._stderr_log)}"
        )


def _chunks_of(frames: np.ndarray | Iterable[np.ndarray], chunk_frames: int) -> Iterator[np.ndarray]:
    """Yield (T, H, W, 3) chunks: slices of one big array, or the items of an iterable ((H, W, 3) items allowed)."""
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        # Slicing keeps the relay's buffer at one chunk instead of a copy of the whole video.
        for start in range(0, frames.shape[0], chunk_frames):
            yield frames[start : start + chunk_frames]
        return
    if isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a (T, H, W, 3) uint8 array, got shape {frames.shape}")
    for chunk in frames:
        yield chunk[np.newaxis] if isinstance(chunk, np.ndarray) and chunk.ndim == 3 else chunk


def write_video(
    path: Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float,
    *,
    crf: int = 18,
    metadata: dict[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a whole video at once; return NAME.mp4. All or nothing: on any error no file is left behind.

    `frames` is a (T, H, W, 3) uint8 array or an iterable of (T, H, W, 3) or (H, W, 3) arrays.
    """
    chunks = _chunks_of(frames, chunk_frames=33)
    first_chunk = next(chunks, None)
    if first_chunk is None:
        raise ValueError(f"write_video got no frames for {path}")
    if not isinstance(first_chunk, np.ndarray) or first_chunk.ndim != 4:
        shape = getattr(first_chunk, "shape", type(first_chunk).__name__)
        raise ValueError(f"write_video needs (T, H, W, 3) uint8 frames for {path}, got {shape}")
    height, width = int(first_chunk.shape[1]), int(first_chunk.shape[2])
    writer = StreamingVideoWriter(path, width, height, fps, crf=crf, metadata=metadata, overwrite=overwrite)
    try:
        writer.write_frames(first_chunk)
        for chunk in chunks:
            writer.write_frames(chunk)
        return writer.finalize()
    except BaseException:
        if writer._state != "finalized":
            writer.abort()
            writer.partial_path.unlink(missing_ok=True)
        raise

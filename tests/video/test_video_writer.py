"""StreamingVideoWriter / write_video: round trip, tags, faststart layout, keyframes, and the refusals."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from helios_core.errors import ConfigError, OutputPathError
from helios_core.video import (
    MP4_METADATA_KEYS,
    StreamingVideoWriter,
    check_output_path,
    probe_video,
    read_video,
    read_video_metadata,
    write_video,
)
from helios_core.video.ffmpeg_tools import run_ffmpeg

CHUNK_FRAMES, WIDTH, HEIGHT = 33, 64, 48


def top_level_boxes(path: Path) -> list[str]:
    """Types of the top-level MP4 boxes, in file order."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(box_type.decode("latin-1"))
        offset += size if size else len(data)
    return boxes


def test_round_trip_count_size_fps_content_tags_and_faststart(tmp_path: Path, smooth_frames) -> None:
    frames = smooth_frames(3 * CHUNK_FRAMES)
    comment = json.dumps({"seed": 42, "prompt": "a cat; on=a #mat\nsecond line"})
    path = tmp_path / "clip.mp4"
    metadata = {"title": "Helios test", "comment": comment}
    with StreamingVideoWriter(path, WIDTH, HEIGHT, 24.0, metadata=metadata) as writer:
        for index in range(3):
            writer.write_frames(frames[index * CHUNK_FRAMES : (index + 1) * CHUNK_FRAMES])
        assert writer.frames_written == 3 * CHUNK_FRAMES
        assert writer.partial_path == tmp_path / "clip.partial.mp4"
        assert writer.partial_path.exists()
    assert path.exists() and not writer.partial_path.exists()

    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (3 * CHUNK_FRAMES, WIDTH, HEIGHT)
    assert info.fps == pytest.approx(24.0)
    clip = read_video(path)
    assert clip.pixel_frames.shape == frames.shape and clip.pixel_frames.dtype == np.uint8
    mean_abs_error = np.abs(clip.pixel_frames.astype(np.int16) - frames.astype(np.int16)).mean()
    assert mean_abs_error < 3.0, mean_abs_error

    tags = read_video_metadata(path)
    assert tags["title"] == "Helios test"
    assert json.loads(tags["comment"]) == json.loads(comment)

    boxes = top_level_boxes(path)
    assert "moof" not in boxes, boxes  # the final file is a plain, progressive MP4
    assert boxes.index("moov") < boxes.index("mdat"), boxes


def frame_timestamps(path: Path, keyframes_only: bool) -> list[int]:
    """Presentation timestamps of the decoded frames (or of the keyframes only), from ffmpeg's framemd5 output."""
    skip = ["-skip_frame", "nokey"] if keyframes_only else []
    text = run_ffmpeg([*skip, "-i", str(path), "-fps_mode", "passthrough", "-f", "framemd5", "-"], "list frames")
    return [int(line.split(",")[2]) for line in text.decode().splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("frames_per_fragment", [CHUNK_FRAMES, 10])
def test_keyframe_starts_every_chunk_and_nowhere_else(tmp_path: Path, smooth_frames, frames_per_fragment) -> None:
    path = tmp_path / "keys.mp4"
    with StreamingVideoWriter(path, WIDTH, HEIGHT, 24.0, frames_per_fragment=frames_per_fragment) as writer:
        writer.write_frames(smooth_frames(3 * CHUNK_FRAMES))
    all_timestamps = frame_timestamps(path, keyframes_only=False)
    keyframe_numbers = [all_timestamps.index(pts) for pts in frame_timestamps(path, keyframes_only=True)]
    assert keyframe_numbers == list(range(0, 3 * CHUNK_FRAMES, frames_per_fragment))


def test_every_allowed_tag_survives_finalize(tmp_path: Path, smooth_frames) -> None:
    metadata = {key: f"value of {key}" for key in sorted(MP4_METADATA_KEYS)}
    path = write_video(tmp_path / "tags.mp4", smooth_frames(4), 24.0, metadata=metadata)
    tags = read_video_metadata(path)
    assert {key: tags.get(key) for key in metadata} == metadata


def test_unknown_tag_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="helios_seed"):
        StreamingVideoWriter(tmp_path / "x.mp4", WIDTH, HEIGHT, 24.0, metadata={"helios_seed": "1"})
    assert list(tmp_path.iterdir()) == []


def test_write_video_accepts_single_frames_and_fractional_fps(tmp_path: Path, smooth_frames) -> None:
    frames = smooth_frames(10)
    path = write_video(tmp_path / "frames.mp4", (frame for frame in frames), 30000 / 1001)
    info = probe_video(path)
    assert info.num_frames == 10
    assert info.fps == pytest.approx(29.97, abs=0.01)


def test_write_video_leaves_nothing_on_error(tmp_path: Path, smooth_frames) -> None:
    def chunks():
        yield smooth_frames(CHUNK_FRAMES)
        yield smooth_frames(2, height=HEIGHT + 2)  # wrong size: a programming error mid-way

    with pytest.raises(ValueError, match="frames must be"):
        write_video(tmp_path / "bad.mp4", chunks(), 24.0)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_without_flag(tmp_path: Path, smooth_frames) -> None:
    path = write_video(tmp_path / "same.mp4", smooth_frames(3), 24.0)
    with pytest.raises(OutputPathError, match=r"same\.mp4.*pass --overwrite"):
        check_output_path(path, overwrite=False)
    with pytest.raises(OutputPathError, match="pass --overwrite"):
        write_video(path, smooth_frames(5), 24.0)
    assert probe_video(path).num_frames == 3  # the old file is untouched
    write_video(path, smooth_frames(5), 24.0, overwrite=True)
    assert probe_video(path).num_frames == 5


def test_refuses_to_clobber_a_leftover_partial(tmp_path: Path) -> None:
    (tmp_path / "run.partial.mp4").write_bytes(b"left by a crash")
    with pytest.raises(OutputPathError, match=r"run\.partial\.mp4"):
        check_output_path(tmp_path / "run.mp4", overwrite=False)
    check_output_path(tmp_path / "run.mp4", overwrite=True)


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (chmod works unless we are root; then read-only /sys)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    for candidate in (locked, Path("/sys")):
        try:
            (candidate / "probe.tmp").touch()
            (candidate / "probe.tmp").unlink()
        except OSError:
            return candidate
    pytest.fail("found no unwritable folder to test with (running as root without a read-only /sys?)")


def test_unwritable_folder_is_refused(tmp_path: Path) -> None:
    folder = _unwritable_folder(tmp_path)
    try:
        with pytest.raises(OutputPathError, match="not writable"):
            check_output_path(folder / "out.mp4", overwrite=False)
        with pytest.raises(OutputPathError, match="not writable"):
            check_output_path(folder / "missing" / "sub" / "out.mp4", overwrite=False)
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_bad_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match=r"\.mp4"):
        check_output_path(tmp_path / "out.mkv", overwrite=False)
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_path(tmp_path / "folder.mp4", overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        check_output_path(tmp_path / "file" / "out.mp4", overwrite=False)


def test_missing_output_folders_are_created(tmp_path: Path, smooth_frames) -> None:
    path = write_video(tmp_path / "a" / "b" / "deep.mp4", smooth_frames(2), 24.0)
    assert probe_video(path).num_frames == 2


@pytest.mark.parametrize(("width", "height"), [(65, 48), (64, 47), (0, 48)])
def test_odd_or_empty_size_is_refused(tmp_path: Path, width: int, height: int) -> None:
    with pytest.raises(OutputPathError, match="even"):
        StreamingVideoWriter(tmp_path / "odd.mp4", width, height, 24.0)


def test_settings_out_of_range_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="crf"):
        StreamingVideoWriter(tmp_path / "a.mp4", WIDTH, HEIGHT, 24.0, crf=0)
    with pytest.raises(ConfigError, match="preset"):
        StreamingVideoWriter(tmp_path / "a.mp4", WIDTH, HEIGHT, 24.0, x264_preset="turbo")
    with pytest.raises(ValueError, match="fps"):
        StreamingVideoWriter(tmp_path / "a.mp4", WIDTH, HEIGHT, 0.0)


def test_write_frames_validates_shape_and_dtype(tmp_path: Path, smooth_frames) -> None:
    with StreamingVideoWriter(tmp_path / "v.mp4", WIDTH, HEIGHT, 24.0) as writer:
        with pytest.raises(ValueError, match="uint8"):
            writer.write_frames(smooth_frames(2).astype(np.float32))
        with pytest.raises(ValueError, match=r"\(T, 48, 64, 3\)"):
            writer.write_frames(smooth_frames(2)[0])
        with pytest.raises(ValueError, match=r"\(T, 48, 64, 3\)"):
            writer.write_frames(smooth_frames(2, width=WIDTH + 2))
        writer.write_frames(smooth_frames(2))
    assert probe_video(tmp_path / "v.mp4").num_frames == 2
    with pytest.raises(RuntimeError, match="finalized"):
        writer.write_frames(smooth_frames(2))


def test_finalize_without_frames_raises_and_cleans_up(tmp_path: Path) -> None:
    writer = StreamingVideoWriter(tmp_path / "empty.mp4", WIDTH, HEIGHT, 24.0)
    with pytest.raises(ValueError, match="no frames"):
        writer.finalize()
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_raises_with_its_stderr(tmp_path: Path, smooth_frames, monkeypatch) -> None:
    # An encoder ffmpeg does not know stands in for any ffmpeg failure.
    real_arguments = StreamingVideoWriter._encode_arguments

    def broken_arguments(self, crf, preset):
        arguments = real_arguments(self, crf, preset)
        arguments[arguments.index("libx264")] = "no_such_encoder"
        return arguments

    monkeypatch.setattr(StreamingVideoWriter, "_encode_arguments", broken_arguments)
    writer = StreamingVideoWriter(tmp_path / "fail.mp4", WIDTH, HEIGHT, 24.0)
    with pytest.raises(RuntimeError, match=r"ffmpeg failed to encode frames[\s\S]*no_such_encoder"):
        for _ in range(20):  # the first write may still fit in the relay's buffer
            writer.write_frames(smooth_frames(CHUNK_FRAMES))
        writer.finalize()
    assert not (tmp_path / "fail.mp4").exists()

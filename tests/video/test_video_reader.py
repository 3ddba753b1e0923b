"""Readers: probe, full / first-N / last-N decoding, frame iteration, images, tags, and MediaError on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helios_core.errors import MediaError
from helios_core.video import (
    iter_video_frames,
    probe_video,
    read_image,
    read_video,
    read_video_metadata,
    write_video,
)
from helios_core.video.mp4_metadata import parse_ffmetadata

WIDTH, HEIGHT = 64, 48


def frames_with_index_stripes(num_frames: int) -> np.ndarray:
    """Frames whose brightness encodes their index (20 levels apart), so the decoded order is checkable."""
    levels = (np.arange(num_frames) * 20 % 240 + 8).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, HEIGHT, WIDTH, 3)).copy()


def decoded_indices(frames: np.ndarray) -> list[int]:
    return [int(round((frame.mean() - 8) / 20)) for frame in frames]


@pytest.fixture(scope="module")
def indexed_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("reader") / "indexed.mp4", frames_with_index_stripes(12), 24.0)


def test_probe_video(indexed_video: Path) -> None:
    info = probe_video(indexed_video)
    assert (info.num_frames, info.fps, info.width, info.height) == (12, 24.0, WIDTH, HEIGHT)


def test_read_video_whole_first_and_last(indexed_video: Path) -> None:
    whole = read_video(indexed_video)
    assert whole.fps == 24.0 and whole.pixel_frames.shape == (12, HEIGHT, WIDTH, 3)
    assert decoded_indices(whole.pixel_frames) == list(range(12))
    assert decoded_indices(read_video(indexed_video, max_frames=4).pixel_frames) == [0, 1, 2, 3]
    assert decoded_indices(read_video(indexed_video, last_frames=5).pixel_frames) == [7, 8, 9, 10, 11]
    assert decoded_indices(read_video(indexed_video, last_frames=50).pixel_frames) == list(range(12))
    with pytest.raises(ValueError, match="not both"):
        read_video(indexed_video, max_frames=2, last_frames=2)


def test_iter_video_frames_yields_writable_frames_in_order(indexed_video: Path) -> None:
    frames = list(iter_video_frames(indexed_video))
    assert decoded_indices(np.stack(frames)) == list(range(12))
    frames[0][0, 0] = 0  # callers own their frames


@pytest.mark.parametrize("reader", [probe_video, read_video, read_video_metadata, lambda p: list(iter_video_frames(p))])
def test_video_readers_name_missing_and_corrupt_files(tmp_path: Path, reader) -> None:
    missing = tmp_path / "missing.mp4"
    with pytest.raises(MediaError, match=r"missing\.mp4 not found"):
        reader(missing)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"corrupt\.mp4.*Invalid data") as error:
        reader(corrupt)
    assert "\n" not in str(error.value)
    with pytest.raises(MediaError, match="is not a file"):
        reader(tmp_path)


def test_read_image_converts_to_rgb_and_applies_exif_rotation(tmp_path: Path) -> None:
    pixels = np.zeros((6, 10, 4), dtype=np.uint8)
    pixels[..., 0], pixels[..., 3] = 200, 255
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "wide.png")
    image = read_image(tmp_path / "wide.png")
    assert image.shape == (6, 10, 3) and image.dtype == np.uint8
    assert (image[..., 0] == 200).all() and (image[..., 1:] == 0).all()

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(pixels[..., :3]).save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape == (10, 6, 3)


def test_read_image_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"nope\.png not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"definitely not a PNG")
    with pytest.raises(MediaError, match=r"junk\.png"):
        read_image(tmp_path / "junk.png")
    truncated = tmp_path / "truncated.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(MediaError, match=r"truncated\.png"):
        read_image(truncated)


def test_parse_ffmetadata_handles_escapes_and_sections() -> None:
    text = ";FFMETADATA1\ntitle=a\\=b\\;c\\#d\\\\e\ncomment=line one\\\nline two\n# note\n[STREAM]\ntitle=stream\n"
    assert parse_ffmetadata(text) == {"title": "a=b;c#d\\e", "comment": "line one\nline two"}

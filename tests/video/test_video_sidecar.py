"""JSON sidecar: naming, round trip, atomic replacement, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helios_core.errors import MediaError, OutputPathError
from helios_core.video import read_sidecar, sidecar_path, write_sidecar


def test_sidecar_sits_next_to_the_video() -> None:
    assert sidecar_path(Path("out/run 1.mp4")) == Path("out/run 1.json")
    assert sidecar_path(Path("out/run.partial.mp4")) == Path("out/run.partial.json")


def test_round_trip_with_paths_numpy_and_unicode(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    data = {"prompt": "un chat sur un tapis, 猫", "seed": np.int64(42), "sigmas": np.array([1.0, 0.5]),
            "model": tmp_path / "weights", "nested": {"fps": 24.0}}
    written = write_sidecar(video, data)
    assert written == tmp_path / "clip.json"
    assert read_sidecar(written) == {"prompt": "un chat sur un tapis, 猫", "seed": 42, "sigmas": [1.0, 0.5],
                                     "model": str(tmp_path / "weights"), "nested": {"fps": 24.0}}
    assert read_sidecar(video) == read_sidecar(written)  # the video path finds its sidecar
    assert oct(written.stat().st_mode & 0o777) == oct(0o644)


def test_rewrite_replaces_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_sidecar(video, {"version": 1})
    inode_before = sidecar_path(video).stat().st_ino
    write_sidecar(video, {"version": 2})
    assert read_sidecar(video) == {"version": 2}
    assert sidecar_path(video).stat().st_ino != inode_before  # a new file renamed into place, not an in-place write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.json"]


def test_unserialisable_data_fails_before_touching_the_file(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_sidecar(video, {"version": 1})
    with pytest.raises(TypeError, match="object"):
        write_sidecar(video, {"bad": object()})
    assert read_sidecar(video) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.json"]


def test_unwritable_folder_raises_output_path_error(tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match=r"missing.*clip\.json"):
        write_sidecar(tmp_path / "missing" / "clip.mp4", {"a": 1})


@pytest.mark.parametrize(("content", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")])
def test_bad_sidecars_raise_media_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "clip.json"
    path.write_text(content)
    with pytest.raises(MediaError, match=rf"clip\.json.*{message}|{message}.*clip\.json"):
        read_sidecar(path)
    with pytest.raises(MediaError, match="not found"):
        read_sidecar(tmp_path / "other.json")

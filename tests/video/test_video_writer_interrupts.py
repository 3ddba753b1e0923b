"""What a crash, SIGKILL, Ctrl-C or an exception leaves on disk: always a playable file of whole chunks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from helios_core.video import StreamingVideoWriter, probe_video, read_video
from helios_core.video.chunk_relay import CHUNK_HEADER
from helios_core.video.writer import RELAY_SCRIPT

CHUNK_FRAMES, WIDTH, HEIGHT = 33, 64, 48
REPO_ROOT = Path(__file__).resolve().parents[2]

# A generator stand-in: writes 33-frame chunks with a pause between them, reporting each one on stdout.
# In mode "mid-chunk" it then sends the header and half of one more chunk by hand and stalls there, which is
# where a real writer spends most of its time (a 24 MB chunk takes as long to send as ffmpeg takes to encode it).
CHILD_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_smooth_frames
    from helios_core.video import StreamingVideoWriter
    from helios_core.video.chunk_relay import CHUNK_HEADER

    path, mode = Path(sys.argv[1]), sys.argv[2]
    writer = StreamingVideoWriter(path, 64, 48, 24.0)
    print(json.dumps({"ffmpeg_pid": writer._ffmpeg.pid, "relay_pid": writer._relay.pid}), flush=True)
    with writer:
        for index in range(2):
            writer.write_frames(make_smooth_frames(33))
            print("chunk", index, flush=True)
            time.sleep(0.1)
        if mode == "mid-chunk":
            chunk = make_smooth_frames(33).tobytes()
            writer._relay.stdin.write(CHUNK_HEADER.pack(len(chunk)) + chunk[: len(chunk) // 2])
            writer._relay.stdin.flush()
            print("mid-chunk", flush=True)
        time.sleep(60)
    """
)


def wait_until_exited(pid: int, timeout_s: float = 20.0) -> None:
    """Wait for a process that is not our child (ffmpeg, orphaned when the writer died) to exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state == "Z":  # exited, waiting for its new parent to reap it
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} still running after {timeout_s} s")


def run_child_until(tmp_path: Path, mode: str, last_line: str) -> tuple[subprocess.Popen, dict[str, int]]:
    """Start the child writer in its own process group; return once it has printed `last_line`."""
    script_path = tmp_path / "child_writer.py"
    script_path.write_text(CHILD_SCRIPT.replace("Path(__file__).parent", repr(str(Path(__file__).parent))))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, str(script_path), str(tmp_path / "video.mp4"), mode],
        stdout=subprocess.PIPE, text=True, env=environment, start_new_session=True,
    )
    assert child.stdout is not None
    pids = json.loads(child.stdout.readline())
    for line in child.stdout:
        if line.strip() == last_line:
            return child, pids
    child.wait()
    pytest.fail(f"child writer exited with {child.returncode} before printing {last_line!r}")


@pytest.mark.parametrize(("mode", "last_line"), [("between-chunks", "chunk 1"), ("mid-chunk", "mid-chunk")])
def test_sigkill_leaves_partial_of_whole_chunks(tmp_path: Path, mode: str, last_line: str) -> None:
    child, pids = run_child_until(tmp_path, mode, last_line)
    child.send_signal(signal.SIGKILL)
    child.wait()
    wait_until_exited(pids["relay_pid"])
    wait_until_exited(pids["ffmpeg_pid"])

    partial = tmp_path / "video.partial.mp4"
    assert partial.exists() and not (tmp_path / "video.mp4").exists()
    num_frames = probe_video(partial).num_frames
    assert num_frames == 2 * CHUNK_FRAMES  # both whole chunks survive; the half chunk is dropped
    assert read_video(partial).pixel_frames.shape == (num_frames, HEIGHT, WIDTH, 3)


def test_ctrl_c_in_terminal_finalises_the_finished_chunks(tmp_path: Path) -> None:
    child, pids = run_child_until(tmp_path, "between-chunks", "chunk 1")
    os.killpg(child.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole foreground process group
    child.wait(timeout=30)
    wait_until_exited(pids["ffmpeg_pid"])

    assert child.returncode != 0  # the KeyboardInterrupt still reaches the caller after finalising
    assert not (tmp_path / "video.partial.mp4").exists()
    assert probe_video(tmp_path / "video.mp4").num_frames == 2 * CHUNK_FRAMES


def test_keyboard_interrupt_in_with_block_finalises(tmp_path: Path, smooth_frames) -> None:
    path = tmp_path / "interrupted.mp4"
    with pytest.raises(KeyboardInterrupt):
        with StreamingVideoWriter(path, WIDTH, HEIGHT, 24.0, metadata={"title": "cut"}) as writer:
            writer.write_frames(smooth_frames(CHUNK_FRAMES))
            writer.write_frames(smooth_frames(CHUNK_FRAMES))
            raise KeyboardInterrupt
    assert not writer.partial_path.exists()
    assert probe_video(path).num_frames == 2 * CHUNK_FRAMES


def test_keyboard_interrupt_before_any_frame_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with StreamingVideoWriter(tmp_path / "nothing.mp4", WIDTH, HEIGHT, 24.0):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_other_exception_leaves_playable_partial(tmp_path: Path, smooth_frames) -> None:
    path = tmp_path / "failed.mp4"
    with pytest.raises(ZeroDivisionError):
        with StreamingVideoWriter(path, WIDTH, HEIGHT, 24.0) as writer:
            writer.write_frames(smooth_frames(CHUNK_FRAMES))
            writer.write_frames(smooth_frames(CHUNK_FRAMES))
            _ = 1 / 0
    assert not path.exists()
    assert probe_video(writer.partial_path).num_frames == 2 * CHUNK_FRAMES


def test_abort_returns_partial_or_none(tmp_path: Path, smooth_frames) -> None:
    empty = StreamingVideoWriter(tmp_path / "empty.mp4", WIDTH, HEIGHT, 24.0)
    assert empty.abort() is None
    assert not empty.partial_path.exists()

    writer = StreamingVideoWriter(tmp_path / "some.mp4", WIDTH, HEIGHT, 24.0)
    writer.write_frames(smooth_frames(CHUNK_FRAMES))
    assert writer.abort() == tmp_path / "some.partial.mp4"
    assert probe_video(writer.partial_path).num_frames == CHUNK_FRAMES


def test_relay_forwards_whole_chunks_and_drops_a_cut_one(tmp_path: Path) -> None:
    first, second = b"A" * 1000, b"B" * 3000
    stream = CHUNK_HEADER.pack(len(first)) + first + CHUNK_HEADER.pack(len(second)) + second[:1500]
    output = tmp_path / "relayed.bin"
    with output.open("wb") as sink:
        result = subprocess.run([sys.executable, "-I", str(RELAY_SCRIPT)], input=stream, stdout=sink,
                                stderr=subprocess.PIPE, check=False)
    assert result.returncode == 0
    assert output.read_bytes() == first
    assert b"dropped a chunk cut short" in result.stderr


class _PipeCutMidChunk:
    """Stands in for the relay's stdin: sends half of the next large write, then raises KeyboardInterrupt,
    as Ctrl-C does when it lands while a chunk is being sent."""

    def __init__(self, real_pipe) -> None:
        self.real_pipe = real_pipe

    def write(self, data) -> int:
        if len(data) > CHUNK_HEADER.size:
            self.real_pipe.write(bytes(data)[: len(data) // 2])
            self.real_pipe.flush()
            raise KeyboardInterrupt
        return self.real_pipe.write(data)

    def flush(self) -> None:
        self.real_pipe.flush()

    def close(self) -> None:
        self.real_pipe.close()


def test_ctrl_c_while_sending_a_chunk_keeps_only_whole_chunks(tmp_path: Path, smooth_frames) -> None:
    path = tmp_path / "cut.mp4"
    with pytest.raises(KeyboardInterrupt):
        with StreamingVideoWriter(path, WIDTH, HEIGHT, 24.0) as writer:
            writer.write_frames(smooth_frames(CHUNK_FRAMES))
            writer._relay.stdin = _PipeCutMidChunk(writer._relay.stdin)
            writer.write_frames(smooth_frames(CHUNK_FRAMES))
    assert writer.frames_written == CHUNK_FRAMES
    assert probe_video(path).num_frames == CHUNK_FRAMES
    with pytest.raises(RuntimeError, match="finalized"):
        writer.write_frames(smooth_frames(CHUNK_FRAMES))

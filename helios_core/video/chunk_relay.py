"""Forward whole chunks of raw frames from the video writer to ffmpeg; drop a chunk that was cut short.

This file runs as its own small process (`python -I chunk_relay.py`, standard library only, never imported by
the engine), between `StreamingVideoWriter` and ffmpeg:

    writer --[length-prefixed chunks]--> chunk relay --[raw frames]--> ffmpeg --> NAME.partial.mp4

Why a process and not ffmpeg's stdin directly: a chunk of 33 frames at 384x640 is 24 MB and a pipe holds 64 KiB,
so writing it takes as long as ffmpeg needs to encode it. A writer killed (SIGKILL, OOM) or interrupted (Ctrl-C)
during that write would leave part of a chunk in ffmpeg, and the video would end on a broken chunk. The relay
reads a whole chunk before it forwards any byte of it, so ffmpeg only ever sees whole chunks. No ffmpeg option or
library does this: ffmpeg's rawvideo input encodes whatever whole frames arrive. As a side effect the relay
buffers one chunk, so the generator hands over a chunk in milliseconds instead of waiting for the encoder.

Protocol on stdin: repeated [8-byte little-endian payload length][payload]. At end of input after a whole chunk,
or after a truncated chunk (which is dropped), the relay closes ffmpeg's stdin, so ffmpeg finishes the file, and
exits 0. If ffmpeg stops reading (it failed), the relay exits 1 with one line on stderr.
Memory: one buffer the size of the largest chunk, reused.
"""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

CHUNK_HEADER = struct.Struct("<Q")


def read_exactly(source: BinaryIO, buffer: memoryview) -> int:
    """Fill `buffer` from `source`; return how many bytes arrived (fewer than len(buffer) only at end of input)."""
    filled = 0
    while filled < len(buffer):
        received = source.readinto(buffer[filled:])
        if not received:
            break
        filled += received
    return filled


def write_all(sink: BinaryIO, data: memoryview) -> None:
    """Write all of `data`; an unbuffered file may accept only part of it per call."""
    written = 0
    while written < len(data):
        written += sink.write(data[written:])


def relay_chunks(source: BinaryIO, sink: BinaryIO) -> int:
    """Copy whole chunks from `source` to `sink` until end of input; return the number of chunks forwarded."""
    header = bytearray(CHUNK_HEADER.size)
    payload = bytearray()
    chunks_forwarded = 0
    while True:
        header_bytes = read_exactly(source, memoryview(header))
        if header_bytes < CHUNK_HEADER.size:
            if header_bytes:
                sys.stderr.write("chunk relay: input ended inside a chunk header; nothing of that chunk sent\n")
            return chunks_forwarded
        (payload_size,) = CHUNK_HEADER.unpack(header)
        if len(payload) < payload_size:
            payload = bytearray(payload_size)
        chunk = memoryview(payload)[:payload_size]
        if read_exactly(source, chunk) < payload_size:
            sys.stderr.write("chunk relay: dropped a chunk cut short (the writer stopped while sending it)\n")
            return chunks_forwarded
        write_all(sink, chunk)
        chunks_forwarded += 1


def main() -> int:
    source = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    sink = open(sys.stdout.fileno(), "wb", buffering=0, closefd=True)
    try:
        relay_chunks(source, sink)
    except BrokenPipeError:
        sys.stderr.write("chunk relay: ffmpeg stopped reading its input (see ffmpeg's error above)\n")
        return 1
    finally:
        # Closing the descriptor is what tells ffmpeg its input has ended (exit would too; this is explicit).
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

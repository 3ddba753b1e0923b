"""`helios data prepare`: videos + captions -> VAE latents and text embeddings cached as safetensors shards.

Per manifest entry (reference `tools/offload_data/get_short-latents.py`):
  decode (imageio-ffmpeg) -> cut [start, end) -> crop -> cover-resize + centre-crop -> resample to `fps` (24)
  -> consecutive 33-frame windows, each VAE-encoded on its own into 9 latents (as inference decodes per chunk)
  -> frame 0 encoded alone (the first-frame anchor) -> caption encoded once -> one shard + one index record.

Invariants:
- One bad video never stops the run: unreadable, too short or badly described entries are recorded as skipped
  (index `skipped` records and `PrepareReport.skipped`) with a one-line reason.
- Resumable: entries whose key is already prepared (and whose shard exists) are not redone; shards are written to
  a hidden temporary name and renamed, so a killed run never leaves a half shard under a real name.
- Files are written only under `out_dir` (see `manifest.shard_path`).
- Deterministic: the VAE's posterior sample uses a generator seeded from `seed` and the entry's key.
- On a GPU, several decoded clips share one VAE call (`encode_pixel_budget`); each keeps its own posterior draws.
- Decoding runs in `workers` threads ahead of the encoder (ffmpeg decodes in its own process, so threads suffice);
  at most `workers` decoded clips wait in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from helios_core.config import DEFAULT_NEGATIVE_PROMPT
from helios_core.errors import MediaError, UserInputError
from helios_core.model.vae import LatentCodec, pixels_from_uint8
from helios_core.training.encoders import load_encoders
from helios_core.training.manifest import ManifestEntry, read_manifest, shard_path
from helios_core.training.prepared_index import (
    NEGATIVE_TEXT_FILE,
    append_record,
    check_settings,
    read_index,
)
from helios_core.video import iter_video_frames, probe_video, resample_fps, resize_center_crop

# About nine 8-second clips at 128x256 per VAE call, one at 384x640. The fourth session's H100 prepare of 400 world
# clips took 146 s with one clip per call (0.36 s a clip), launch-bound for the embedded model's small VAE.
GPU_ENCODE_PIXEL_BUDGET = 48 * 2**20
STORAGE_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
ProgressFn = Callable[[int, int, str], None]  # (entries handled, entries total, message)


@dataclass(frozen=True)
class SkippedVideo:
    source: str
    reason: str


@dataclass
class PrepareReport:
    out_dir: Path
    prepared: list[str] = field(default_factory=list)  # keys prepared by this run
    already_done: int = 0  # entries found prepared by an earlier run
    skipped: list[SkippedVideo] = field(default_factory=list)
    total_chunks: int = 0  # chunks written by this run


def prepare_dataset(
    manifest: Path,
    out_dir: Path,
    *,
    model_path: Path,
    height: int,
    width: int,
    fps: float = 24.0,
    chunk_latent_frames: int = 9,
    device: str | torch.device = "cpu",
    workers: int = 1,
    max_sequence_length: int = 512,
    storage_dtype: str = "bfloat16",
    seed: int = 0,
    on_progress: ProgressFn | None = None,
    encode_pixel_budget: int | None = None,
) -> PrepareReport:
    """`encode_pixel_budget`: clips are grouped into one VAE call while their windows hold at most this many pixels
    (frames x height x width); None picks `GPU_ENCODE_PIXEL_BUDGET` on a CUDA device and one clip per call on the
    CPU, where a call's cost is its arithmetic and grouping only adds memory."""
    if storage_dtype not in STORAGE_DTYPES:
        raise UserInputError(f"storage dtype {storage_dtype!r} is not one of {', '.join(STORAGE_DTYPES)}")
    if workers < 1:
        raise UserInputError(f"--workers must be at least 1, got {workers}")
    out_dir = Path(out_dir)
    entries, problems = read_manifest(Path(manifest))
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    settings = {"height": height, "width": width, "fps": float(fps), "chunk_latent_frames": chunk_latent_frames,
                "max_sequence_length": max_sequence_length, "storage_dtype": storage_dtype, "seed": seed,
                "model": str(Path(model_path).resolve())}
    check_settings(out_dir, settings)
    report = PrepareReport(out_dir)
    for problem in problems:
        report.skipped.append(SkippedVideo(problem.source, problem.reason))
        append_record(out_dir, {"key": None, "line": problem.line, "source": problem.source, "skipped": problem.reason})
    done, _ = read_index(out_dir)
    pending = []
    for entry in entries:
        if entry.key in done and (out_dir / done[entry.key]["shard"]).is_file():
            report.already_done += 1
        else:
            pending.append(entry)
    total = len(entries)
    if on_progress:
        on_progress(report.already_done, total, f"{report.already_done} already prepared, {len(pending)} to do")
    if not pending:
        return report

    codec, prompt_encoder = load_encoders(Path(model_path), torch.device(device), max_sequence_length)
    if codec.spatial_scale and (height % codec.spatial_scale or width % codec.spatial_scale):
        raise UserInputError(f"--height/--width {height}x{width} must be multiples of {codec.spatial_scale}")
    store = STORAGE_DTYPES[storage_dtype]
    negative = out_dir / NEGATIVE_TEXT_FILE
    if not negative.is_file():
        _save_atomic({"text": prompt_encoder.encode(DEFAULT_NEGATIVE_PROMPT)[0].to(store)}, negative,
                     {"prompt": DEFAULT_NEGATIVE_PROMPT})
    chunk_pixel_frames = codec.pixel_frames_for(chunk_latent_frames)
    handled = report.already_done
    decode = lambda e: _decode_entry(e, height, width, fps)
    if encode_pixel_budget is None:
        encode_pixel_budget = GPU_ENCODE_PIXEL_BUDGET if codec.device.type == "cuda" else 0
    group: list[tuple[ManifestEntry, np.ndarray]] = []  # decoded clips waiting for one shared VAE call
    group_pixels = 0

    def encode_group() -> None:
        nonlocal group, group_pixels
        if group:
            for entry, num_chunks in _encode_entries(group, out_dir, codec, prompt_encoder, chunk_pixel_frames,
                                                     store, seed, settings):
                report.prepared.append(entry.key)
                report.total_chunks += num_chunks
        group, group_pixels = [], 0

    for entry, outcome in _prefetched(pending, decode, workers):
        handled += 1
        if isinstance(outcome, MediaError):
            _skip(report, out_dir, entry, str(outcome))
        elif len(outcome) < chunk_pixel_frames:
            reason = (f"too short: {len(outcome)} frames at {fps:g} fps after cutting, "
                      f"needs at least {chunk_pixel_frames} (one chunk)")
            _skip(report, out_dir, entry, f"video {entry.source}: {reason}")
        else:
            pixels = (len(outcome) // chunk_pixel_frames) * chunk_pixel_frames * height * width
            if group and group_pixels + pixels > encode_pixel_budget:
                encode_group()
            group.append((entry, outcome))
            group_pixels += pixels
        if on_progress:
            on_progress(handled, total, str(entry.source.name))
    encode_group()
    return report


def _skip(report: PrepareReport, out_dir: Path, entry: ManifestEntry, reason: str) -> None:
    report.skipped.append(SkippedVideo(str(entry.source), reason))
    append_record(out_dir, {"key": entry.key, "line": entry.line, "source": str(entry.source), "skipped": reason})


def _prefetched(entries: list[ManifestEntry], decode: Callable, workers: int) -> Iterator[tuple[ManifestEntry, object]]:
    """Yield (entry, frames or MediaError) in manifest order, decoding up to `workers` entries ahead."""
    def safe(entry: ManifestEntry) -> object:
        try:
            return decode(entry)
        except MediaError as error:
            return error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        queue: deque[tuple[ManifestEntry, Future]] = deque()
        upcoming = iter(entries)
        for entry in upcoming:
            queue.append((entry, pool.submit(safe, entry)))
            if len(queue) >= workers:
                break
        while queue:
            entry, future = queue.popleft()
            result = future.result()
            next_entry = next(upcoming, None)
            if next_entry is not None:
                queue.append((next_entry, pool.submit(safe, next_entry)))
            yield entry, result


def _decode_entry(entry: ManifestEntry, height: int, width: int, fps: float) -> np.ndarray:
    """(T, height, width, 3) uint8 at `fps`: cut, cropped and resized frame by frame, so memory stays at output size."""
    info = probe_video(entry.source)  # raises MediaError for missing, corrupt or frameless files
    source_fps = entry.fps or info.fps
    if entry.crop is not None:
        x0, x1, y0, y1 = entry.crop
        if x1 > info.width or y1 > info.height:
            raise MediaError(f"video {entry.source}: crop {list(entry.crop)} is outside its {info.width}x{info.height} "
                             "frames")
    first = round((entry.start or 0.0) * source_fps)
    last = round(entry.end * source_fps) if entry.end is not None else None
    kept = []
    for index, frame in enumerate(iter_video_frames(entry.source)):
        if last is not None and index >= last:
            break
        if index < first:
            continue
        if entry.crop is not None:
            x0, x1, y0, y1 = entry.crop
            frame = frame[y0:y1, x0:x1]
        kept.append(resize_center_crop(frame, height, width))
    if not kept:
        raise MediaError(f"video {entry.source}: no frames between start {entry.start} and end {entry.end}")
    return resample_fps(np.stack(kept), source_fps, fps)


@torch.no_grad()
def _encode_entries(group: list[tuple[ManifestEntry, np.ndarray]], out_dir: Path, codec: LatentCodec,
                    prompt_encoder, chunk_pixel_frames: int, store: torch.dtype, seed: int, settings: dict
                    ) -> list[tuple[ManifestEntry, int]]:
    """Write one shard per clip; all the group's windows go through one VAE call (and all first frames through a
    second). Each window is still encoded on its own (the causal VAE sees one window per batch row), and each clip's
    posterior samples come from its own generator (seeded by `seed` and its key) in the same order as for a group of
    one, so grouping changes results only by the VAE's batch rounding."""
    windows, generators = [], []
    for entry, frames in group:
        num_chunks = len(frames) // chunk_pixel_frames  # the tail shorter than one chunk is dropped, as the reference
        windows.append(torch.cat([pixels_from_uint8(frames[c * chunk_pixel_frames: (c + 1) * chunk_pixel_frames],
                                                    codec.device) for c in range(num_chunks)]))
        entry_seed = int.from_bytes(hashlib.sha1(f"{seed}:{entry.key}".encode()).digest()[:8], "little") >> 1
        generators.append(torch.Generator("cpu").manual_seed(entry_seed))
    latents = codec.encode_many(windows, generators)  # per clip (num_chunks, C, 9, h, w)
    first_frames = codec.encode_many([pixels_from_uint8(frames[:1], codec.device) for _, frames in group], generators)
    written = []
    for (entry, frames), clip_latents, first_frame in zip(group, latents, first_frames):
        text = prompt_encoder.encode(entry.caption)[0]  # (L, D)
        tensors = {"latents": clip_latents.cpu().to(store), "first_frame": first_frame[0].cpu().to(store),
                   "text": text.to(store)}
        path = shard_path(out_dir, entry)
        metadata = {"caption": entry.caption, "source": str(entry.source), "settings": json.dumps(settings)}
        _save_atomic(tensors, path, metadata)
        append_record(out_dir, {"key": entry.key, "shard": str(path.relative_to(out_dir.resolve())),
                                "caption": entry.caption, "source": str(entry.source),
                                "num_chunks": clip_latents.shape[0], "num_pixel_frames": len(frames)})
        written.append((entry, clip_latents.shape[0]))
    return written


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(temporary), metadata=metadata)
    os.replace(temporary, path)

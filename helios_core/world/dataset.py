"""Writing a world dataset: `write_world_dataset(out_dir, num_clips, ...)` -> out_dir/manifest.jsonl.

Layout:
    out_dir/manifest.jsonl        one JSON object per clip, in clip order
    out_dir/clips/00001.mp4 ...   H.264 MP4s at 24 fps

Each manifest line is {"path": "clips/00001.mp4", "caption": ..., "fps": 24, "meta": {"seed": ..., "split": ...}},
with the path relative to the manifest; `helios data prepare` reads it as it is (it keeps "meta" and does not
interpret it). `meta.seed` is the scene seed: `sample_scene(seed, split=split)` rebuilds the clip's scene,
and `render_frames` its frames, exactly. Clip seeds come from numpy's SeedSequence of (seed, clip index), so they are
well spread and the same on every machine.

Clips are rendered and encoded chunk by chunk, so memory stays flat however long they are. The manifest is written
last, to a temporary name and then renamed: a manifest on disk always lists clips that exist.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from helios_core.errors import ConfigError, OutputPathError
from helios_core.video import write_video
from helios_core.world.caption import caption
from helios_core.world.render import MIN_SIDE, WORLD_FPS, render_frames
from helios_core.world.scene import SPLITS, Scene, sample_scene

MANIFEST_NAME = "manifest.jsonl"
CLIPS_DIR = "clips"
RENDER_CHUNK_FRAMES = 66  # two of the writer's 33-frame fragments per call


def clip_seed(seed: int, clip_index: int) -> int:
    """The scene seed of clip `clip_index` (0-based) of a dataset made with `seed`."""
    return int(np.random.SeedSequence([seed, clip_index]).generate_state(1, dtype=np.uint32)[0])


def write_world_dataset(
    out_dir: Path,
    num_clips: int,
    *,
    seconds: float,
    height: int,
    width: int,
    seed: int,
    split: str = "train",
    overwrite: bool = False,
    workers: int = 1,
) -> Path:
    """Render `num_clips` clips of `seconds` each at height x width into out_dir; return the manifest's path.

    `workers` > 1 renders clips in that many processes; every clip depends only on (seed, clip index), so the
    files and the manifest are the same whatever the number of workers.
    """
    out_dir = Path(out_dir)
    _check_arguments(num_clips, seconds, height, width, seed, split)
    if workers < 1:
        raise ConfigError(f"world dataset workers must be at least 1, got {workers}")
    manifest_path = out_dir / MANIFEST_NAME
    if manifest_path.exists() and not overwrite:
        raise OutputPathError(f"{manifest_path} already exists; pick another output folder or pass overwrite=True")
    num_frames = max(1, round(seconds * WORLD_FPS))
    jobs = [(out_dir, seed, index, num_frames, height, width, split, overwrite) for index in range(num_clips)]
    if workers == 1:
        lines = [_write_clip(*job) for job in jobs]
    else:
        # Processes, not threads: rendering is numpy work that holds the GIL for most of a frame.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            lines = pool.starmap(_write_clip, jobs, chunksize=4)
    temporary_path = manifest_path.with_name(f".{MANIFEST_NAME}.tmp")
    temporary_path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    os.replace(temporary_path, manifest_path)
    return manifest_path


def _write_clip(out_dir: Path, seed: int, clip_index: int, num_frames: int, height: int, width: int, split: str,
                overwrite: bool) -> dict:
    """Render and encode clip `clip_index`; return its manifest line."""
    scene_seed = clip_seed(seed, clip_index)
    scene = sample_scene(scene_seed, split=split)
    relative_path = f"{CLIPS_DIR}/{clip_index + 1:05d}.mp4"
    text = caption(scene)
    write_video(
        out_dir / relative_path,
        _frame_chunks(scene, num_frames, height, width),
        WORLD_FPS,
        metadata={"comment": json.dumps({"caption": text, "seed": scene_seed, "split": split})},
        overwrite=overwrite,
    )
    return {"path": relative_path, "caption": text, "fps": WORLD_FPS, "meta": {"seed": scene_seed, "split": split}}


def _frame_chunks(scene: Scene, num_frames: int, height: int, width: int) -> Iterator[np.ndarray]:
    for start in range(0, num_frames, RENDER_CHUNK_FRAMES):
        yield render_frames(scene, start, min(RENDER_CHUNK_FRAMES, num_frames - start), height, width)


def _check_arguments(num_clips: int, seconds: float, height: int, width: int, seed: int, split: str) -> None:
    if num_clips < 1:
        raise ConfigError(f"number of world clips must be at least 1, got {num_clips}")
    if not seconds > 0:
        raise ConfigError(f"world clip length must be positive seconds, got {seconds}")
    if height < MIN_SIDE or width < MIN_SIDE or height % 2 or width % 2:
        raise ConfigError(
            f"world clip size must be even and at least {MIN_SIDE}x{MIN_SIDE} (H.264 needs even sides), "
            f"got {height}x{width}"
        )
    if seed < 0:
        raise ConfigError(f"world dataset seed must be a non-negative integer, got {seed}")
    if split not in SPLITS:
        raise ConfigError(f"unknown world split {split!r}; use 'train' or 'heldout'")

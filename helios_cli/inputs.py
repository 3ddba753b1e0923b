"""Turn what the user pointed at (an image, a video, an output path) into checked engine inputs.

Everything here runs before the model loads and raises `UserInputError` subclasses (from `helios_core.video` or its
own checks), so a missing, unreadable or corrupt file costs the user a second, not a model load.

Conditioning media is brought to the request's size (cover-resize + centre crop, never stretched) and, for a video,
to the request's frame rate, so the engine always receives frames shaped like the video it will write.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from helios_core.batch import slugify
from helios_core.config import GenerationConfig
from helios_core.errors import ConfigError, MediaError
from helios_core.video import (
    nearest_frame_indices,
    probe_video,
    read_image,
    read_video,
    resample_fps,
    resize_center_crop,
)
from helios_core.video.writer import MAX_CRF, MIN_CRF, X264_PRESETS

DEFAULT_OUTPUT_DIR = Path("outputs")
VAE_TEMPORAL_SCALE = 4  # the Wan VAE: one latent frame per 4 pixel frames, plus the first


def load_image(path: Path, config: GenerationConfig) -> np.ndarray:
    """The conditioning image for image-to-video, (height, width, 3) uint8 at the request's size."""
    image = read_image(path)
    return resize_center_crop(image, config.video.height, config.video.width)


def load_video(path: Path, config: GenerationConfig) -> np.ndarray:
    """The conditioning video for video-to-video, (T, height, width, 3) uint8 at the request's fps.

    The engine anchors on the clip's first frame and encodes only the last whole chunks its history can hold (as
    the reference does). So only those are decoded, plus the first frame: a long or high-resolution clip never sits
    in memory whole, and the engine sees exactly the frames it would have used from the full clip.
    """
    info = probe_video(path)
    fps = config.video.fps
    chunk = pixel_frames_per_chunk(config)
    available = len(nearest_frame_indices(info.num_frames, info.fps, fps))  # frames once resampled to `fps`
    if available < chunk:
        raise MediaError(
            f"video {path} is too short to continue: it needs at least {chunk} frames at {fps:g} fps "
            f"({chunk / fps:.2f} s), it has {available}"
        )
    history_chunks = math.ceil(sum(config.history.sizes) / config.history.latent_frames_per_chunk)
    tail_frames = min(available, history_chunks * chunk)
    # Source frames that cover `tail_frames` output frames, with one to spare for rounding in the resampling.
    source_frames = min(info.num_frames, math.ceil(tail_frames * info.fps / fps) + 1)
    clip = read_video(path, last_frames=source_frames)
    frames = resample_fps(clip.pixel_frames, clip.fps, fps)[-tail_frames:]
    if source_frames < info.num_frames:
        first = read_video(path, max_frames=1).pixel_frames
        frames = np.concatenate([first, frames])
    return resize_center_crop(frames, config.video.height, config.video.width)


def pixel_frames_per_chunk(config: GenerationConfig) -> int:
    """33 for the default 9 latent frames per chunk (the Wan VAE compresses time 4x, plus the first frame)."""
    return (config.history.latent_frames_per_chunk - 1) * VAE_TEMPORAL_SCALE + 1


def check_output_settings(config: GenerationConfig) -> None:
    """The writer's own checks on crf and the x264 preset, done here so they fail before the model loads."""
    if not MIN_CRF <= config.output.crf <= MAX_CRF:
        raise ConfigError(
            f"--crf must be from {MIN_CRF} to {MAX_CRF} (lower is better quality), got {config.output.crf}"
        )
    if config.output.x264_preset not in X264_PRESETS:
        raise ConfigError(
            f"output.x264_preset must be one of {', '.join(X264_PRESETS)}, got '{config.output.x264_preset}'"
        )
    if config.video.height % 2 or config.video.width % 2:
        raise ConfigError(
            f"video size {config.video.height}x{config.video.width} must be even for H.264 (yuv420p)"
        )


def default_output_name(prompt: str, seed: int) -> str:
    """`a-fox-running-1234.mp4`: the prompt's slug and the seed, so the file says what made it."""
    return f"{slugify(prompt)}-{seed}.mp4"


def resolve_output(output: Path | None, prompt: str, seed: int) -> Path:
    """`--output` as given, a default name inside `--output DIR/`, or `outputs/<slug>-<seed>.mp4`."""
    if output is None:
        return DEFAULT_OUTPUT_DIR / default_output_name(prompt, seed)
    if output.is_dir() or str(output).endswith(("/", "\\")):
        return output / default_output_name(prompt, seed)
    return output

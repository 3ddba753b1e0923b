"""Fixtures for the training tests: tiny synthetic videos (moving squares) prepared once per session.

The videos are 64x64 so the tiny VAE gives 8x8 latents, the smallest size the three-level pyramid (2x2 at the
coarsest level, one 2x2 patch) allows. Torch runs single-threaded in these tests: the CPU is shared, and oversubscribed
threads make the tiny VAE ten times slower; the previous thread count is restored after each module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

SIZE = 64
SEQUENCE_LENGTH = 16  # text tokens: the tiny text encoder is 32 wide, so a short sequence keeps shards small
# LoRA settings of the tests that compare two ways of running the same steps (data workers, compiled blocks).
PAIRED_RUN = {"lora.rank": 4, "lora.alpha": 4, "optim.lr": 1e-3, "loop.batch_size": 2, "loop.checkpoint_every": 100,
              "loop.gradient_checkpointing": False}


def final_trainables(out_dir: Path) -> dict[str, torch.Tensor]:
    """The trainable tensors of a run's newest checkpoint."""
    from safetensors.torch import load_file

    from helios_core.training.checkpoint import checkpoint_dirs

    return load_file(checkpoint_dirs(out_dir)[-1] / "trainable.safetensors")


def moving_square_frames(num_frames: int, seed: int) -> np.ndarray:
    """(T, 64, 64, 3) uint8: a coloured square moving at constant speed over a flat background."""
    rng = np.random.default_rng(seed)
    frames = np.empty((num_frames, SIZE, SIZE, 3), dtype=np.uint8)
    frames[:] = rng.integers(0, 80, 3)
    x, y = rng.integers(0, 40, 2)
    dx, dy = rng.integers(1, 3, 2)
    colour = rng.integers(120, 255, 3)
    for t in range(num_frames):
        left, top = (x + dx * t) % 48, (y + dy * t) % 48
        frames[t, top: top + 16, left: left + 16] = colour
    return frames


def write_manifest(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    from helios_core.video import write_video

    folder = tmp_path_factory.mktemp("training_videos")
    # Two videos of 70 frames (2 chunks of 33) and one of 40 (1 chunk), all at 24 fps.
    for name, frames, seed in (("a", 70, 0), ("b", 70, 1), ("c", 40, 2)):
        write_video(folder / f"{name}.mp4", moving_square_frames(frames, seed), 24)
    return folder


def prepare_three_videos(out: Path, video_dir: Path, model_dir: Path, captions: tuple[str, str, str],
                         manifest_name: str = "manifest.jsonl") -> Path:
    """Prepare video_dir's a.mp4, b.mp4 and c.mp4 with these captions into `out` (all three must prepare)."""
    from helios_core.training import prepare_dataset

    names = ("a.mp4", "b.mp4", "c.mp4")
    manifest = write_manifest(video_dir / manifest_name, [{"path": n, "caption": c} for n, c in zip(names, captions)])
    report = prepare_dataset(manifest, out, model_path=model_dir, height=SIZE, width=SIZE,
                             max_sequence_length=SEQUENCE_LENGTH)
    assert len(report.prepared) == 3 and not report.skipped
    return out


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory, video_dir: Path, tiny_model_dir: Path) -> Path:
    torch.set_num_threads(1)
    return prepare_three_videos(tmp_path_factory.mktemp("prepared"), video_dir, tiny_model_dir,
                                ("a red square moves right", "a blue square moves down", "a green square moves"))


class Killed(Exception):
    """Raised from a step callback: the training process "dies" right after that step."""


@pytest.fixture
def killed_then_resumed():
    """`run(config, out_dir, kill_after, **paths)`: train until step `kill_after` is done and logged, stop there
    as a killed process would (no final checkpoint), then `--resume` in the same folder; returns the resumed result."""
    from helios_core.training import train

    def run(config, out_dir: Path, kill_after: int, **paths):
        def kill(info) -> None:
            if info.step == kill_after:
                raise Killed

        with pytest.raises(Killed):
            train(config, out_dir=out_dir, on_step=kill, **paths)
        return train(config, out_dir=out_dir, resume=True, **paths)

    return run


# Tiny DMD with GAN heads on: the settings both GAN test files build their stage from.
DMD_GAN = {"distill.method": "dmd", "lora.rank": 4, "lora.alpha": 4, "distill.critic_lora_rank": 4,
           "distill.critic_lora_alpha": 4, "distill.generator_steps": [1, 1, 1],
           "distill.critic_steps_per_generator_step": 1, "loop.batch_size": 1, "loop.gradient_checkpointing": False,
           "optim.lr": 1e-3, "distill.critic_lr": 1e-3, "loop.checkpoint_every": 100, "ema.enabled": False,
           "distill.gan.enabled": True, "distill.gan.head_channels": 8, "distill.gan.head_layers": 1}


@pytest.fixture
def dmd_gan_settings() -> dict:
    return dict(DMD_GAN)


@pytest.fixture
def dmd_gan_parts(tiny_model_dir: Path, prepared_dir: Path):
    """`make(**overrides)`: the distilled stage's components (CPU, fp32) with the tiny DMD + GAN settings."""
    from helios_core.training import load_train_config
    from helios_core.training.stages.dmd import DmdStage
    from helios_core.training.trainer import build_components

    def make(**overrides):
        config = load_train_config("distilled", {**DMD_GAN, **overrides})
        parts = build_components(config, tiny_model_dir, prepared_dir, torch.device("cpu"), "fp32")
        assert isinstance(parts.stage, DmdStage) and parts.stage.gan is not None
        return parts

    return make

"""Validation videos (loop.validate_every): playable MP4s from the current weights, logged, without touching the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helios_core.errors import ConfigError
from helios_core.training import load_train_config, train
from helios_core.training.checkpoint import checkpoint_dirs
from helios_core.training.model_setup import weights_swapped_in
from helios_core.training.validation import validation_generation_config
from helios_core.video import read_video

# The distilled stage (ODE) keeps it fast: its sampler, pyramid DMD [1, 1, 1], makes a chunk in 3 forwards.
TINY = {"lora.rank": 4, "lora.alpha": 4, "optim.lr": 1e-3, "loop.batch_size": 1, "loop.max_steps": 2,
        "loop.checkpoint_every": 100, "loop.gradient_checkpointing": False, "ema.enabled": True,
        "ema.start_step": 0, "distill.teacher_steps": [1, 1, 1]}


def test_validation_videos_are_written_logged_and_leave_training_unchanged(tiny_model_dir: Path, prepared_dir: Path,
                                                                          tmp_path: Path):
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    prompts = ["a red square moves right", "a blue square moves down"]
    config = load_train_config("distilled", {**TINY, "loop.validate_every": 2, "loop.validation_prompts": prompts})
    with_videos = train(config, out_dir=tmp_path / "run", **paths)

    folder = tmp_path / "run" / "validation"
    assert sorted(p.name for p in folder.iterdir()) == ["step_000002.mp4", "step_000002_p1.mp4"]
    for name in ("step_000002.mp4", "step_000002_p1.mp4"):
        clip = read_video(folder / name)  # the project's reader: a playable MP4 of one 33-frame chunk
        assert clip.pixel_frames.shape == (33, 64, 64, 3) and clip.pixel_frames.std() > 0 and clip.fps == 24
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert "validation_videos" not in log[0]
    assert log[1]["validation_videos"] == ["validation/step_000002.mp4", "validation/step_000002_p1.mp4"]

    # The same run without videos: the same losses and the same final weights, bit for bit.
    plain = train(load_train_config("distilled", TINY), out_dir=tmp_path / "plain", **paths)
    assert plain.losses == with_videos.losses
    for name in ("trainable.safetensors", "ema.safetensors"):
        last = [checkpoint_dirs(tmp_path / run)[-1] / name for run in ("run", "plain")]
        assert last[0].read_bytes() == last[1].read_bytes()


def test_base_and_mid_validation_also_log_the_caption_probe_without_changing_training(tiny_model_dir: Path,
                                                                                    prepared_dir: Path,
                                                                                    tmp_path: Path):
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    quick = {**TINY, "loop.max_steps": 2, "ema.enabled": False, "loop.batch_size": 2}  # the probe swaps captions
    config = load_train_config("mid", {**quick, "loop.validate_every": 2,
                                       "loop.validation_prompts": ["a red square moves right"]})
    probed = train(config, out_dir=tmp_path / "run", **paths)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert "caption_gap" not in log[0]
    assert log[1]["own_caption_loss"] > 0 and log[1]["swapped_caption_loss"] > 0
    assert log[1]["caption_gap"] == pytest.approx(log[1]["swapped_caption_loss"] / log[1]["own_caption_loss"] - 1)
    plain = train(load_train_config("mid", quick), out_dir=tmp_path / "plain", **paths)
    assert plain.losses == probed.losses


@pytest.mark.parametrize(("stage", "kind", "steps"), [
    ("base", "flow_unipc", (50,)), ("mid", "pyramid_unipc", (20, 20, 20)), ("distilled", "pyramid_dmd", (1, 1, 1))])
def test_validation_uses_the_stage_sampler_for_one_chunk_at_the_data_size(stage: str, kind: str, steps: tuple):
    settings = {"height": 128, "width": 192, "fps": 16.0, "max_sequence_length": 32}
    config = validation_generation_config(load_train_config(stage), settings, 33, torch.device("cpu"))
    assert (config.sampler.kind, config.sampler.steps) == (kind, steps)
    assert (config.video.height, config.video.width, config.video.fps, config.video.num_frames) == (128, 192, 16.0, 33)
    assert config.prompt.max_sequence_length == 32 and config.history.sizes == (16, 2, 1)


def test_ema_swap_restores_the_trained_weights_exactly():
    params = {"a": torch.nn.Parameter(torch.randn(3)), "b": torch.nn.Parameter(torch.randn(2, 2))}
    before = {n: p.detach().clone() for n, p in params.items()}
    ema = {n: torch.zeros_like(p) for n, p in params.items()}
    with weights_swapped_in(params, ema):
        assert all(torch.equal(p, ema[n]) for n, p in params.items())
    assert all(torch.equal(p, before[n]) for n, p in params.items())


@pytest.mark.parametrize(("overrides", "message"), [
    ({"loop.validate_every": -1}, "loop.validate_every must be >= 0"),
    ({"loop.validate_every": 10, "loop.validation_prompts": []}, "validation_prompts"),
    ({"loop.validate_every": 10, "loop.validation_prompts": [" "]}, "non-empty"),
])
def test_bad_validation_settings_are_one_line_errors(overrides: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        load_train_config("mid", overrides)

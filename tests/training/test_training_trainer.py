"""The training loop: every stage learns on the tiny set, and a killed-then-resumed run repeats the same curve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helios_core.errors import ConfigError, OutputPathError
from helios_core.training import load_train_config, train
from helios_core.training.checkpoint import checkpoint_dirs
from helios_core.training.evaluate import evaluate_loss

TINY = {"lora.rank": 8, "lora.alpha": 8, "optim.lr": 1e-3, "optim.warmup_steps": 0, "loop.batch_size": 2,
        "loop.checkpoint_every": 100, "loop.gradient_checkpointing": False}
STAGE_SETTINGS = {
    "base": {"loop.max_steps": 30},
    "mid": {"loop.max_steps": 30},
    # A 1+1+1-step pyramid teacher with CFG keeps the on-the-fly ODE pairs cheap.
    "distilled": {"loop.max_steps": 30, "optim.lr": 3e-3, "distill.teacher_steps": [1, 1, 1],
                  "distill.regression_weight": 1.0,
                  "ema.enabled": False},
}


@pytest.mark.parametrize("stage", ["base", "mid", "distilled"])
def test_each_stage_lowers_its_fixed_validation_loss(stage: str, tiny_model_dir: Path, prepared_dir: Path,
                                                     tmp_path: Path):
    config = load_train_config(stage, {**TINY, **STAGE_SETTINGS[stage]})
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    before = evaluate_loss(config, **paths)
    result = train(config, out_dir=tmp_path / "run", **paths)
    after = evaluate_loss(config, checkpoint=result.last_checkpoint, **paths)
    assert result.final_step == config.loop.max_steps == len(result.losses)
    assert after < 0.95 * before, (before, after)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == list(range(1, config.loop.max_steps + 1))
    assert all(entry["lr"] == config.optim.lr for entry in log)
    if stage == "mid":  # each line names the pyramid level its step trained (steps' costs differ 16x by level)
        levels = [entry["level"] for entry in log]
        assert set(levels) == {0, 1, 2}, levels


def test_resume_after_a_kill_repeats_the_uninterrupted_loss_curve_bit_for_bit(tiny_model_dir: Path,
                                                                             prepared_dir: Path, tmp_path: Path,
                                                                             killed_then_resumed):
    # EMA, warm-up and gradient checkpointing on: their state must survive the restart too.
    overrides = {**TINY, "loop.max_steps": 6, "loop.checkpoint_every": 3, "optim.warmup_steps": 4,
                 "ema.enabled": True, "ema.start_step": 2, "loop.gradient_checkpointing": True}
    config = load_train_config("base", overrides)
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    whole = train(config, out_dir=tmp_path / "whole", **paths)

    # step 3 is checkpointed; step 4 is done and logged, then the process "dies"
    resumed = killed_then_resumed(config, tmp_path / "split", 4, **paths)
    assert resumed.steps_done == 3 and resumed.final_step == 6
    assert resumed.losses == whole.losses[3:]  # exact float equality, not approximate
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    whole_log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [(e["step"], e["loss"], e["lr"]) for e in log] == [(e["step"], e["loss"], e["lr"]) for e in whole_log]
    ema_whole = (checkpoint_dirs(tmp_path / "whole")[-1] / "ema.safetensors").read_bytes()
    assert (checkpoint_dirs(tmp_path / "split")[-1] / "ema.safetensors").read_bytes() == ema_whole


def test_checkpoints_keep_the_last_k_and_extend_a_finished_run(tiny_model_dir: Path, prepared_dir: Path,
                                                              tmp_path: Path):
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir, "out_dir": tmp_path / "run"}
    config = load_train_config("base", {**TINY, "loop.max_steps": 4, "loop.checkpoint_every": 1,
                                        "loop.keep_last": 2})
    train(config, **paths)
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["step_000003", "step_000004"]
    for name in ("trainable.safetensors", "optimizer.safetensors", "rng_rank0.safetensors", "state.json",
                 "config.yaml"):
        assert (tmp_path / "run" / "checkpoints" / "step_000004" / name).is_file()
    with pytest.raises(OutputPathError, match="--resume"):
        train(config, **paths)
    with pytest.raises(ConfigError, match="optim.lr"):
        train(load_train_config("base", {**TINY, "loop.max_steps": 5, "optim.lr": 5e-4}), resume=True, **paths)
    longer = train(load_train_config("base", {**TINY, "loop.max_steps": 5, "loop.keep_last": 2}), resume=True,
                   **paths)
    assert longer.steps_done == 1 and longer.final_step == 5


def test_embedded_model_ablation_trains_without_anchor_and_corruption(tiny_model_dir: Path, prepared_dir: Path,
                                                                      tmp_path: Path):
    config = load_train_config("base", {**TINY, "loop.max_steps": 2, "history.keep_first_frame": False,
                                        "corrupt.enabled": False, "lora.enabled": False})
    result = train(config, model_path=tiny_model_dir, data_dir=prepared_dir, out_dir=tmp_path / "run")
    assert result.final_step == 2 and all(loss > 0 for loss in result.losses)


def test_caption_dropout_trains_on_the_negative_prompt_embedding(tiny_model_dir: Path, prepared_dir: Path,
                                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from helios_core.training import prefetch as batch_module  # where every step's batch is built
    from helios_core.training.dataset import LatentChunkDataset

    seen: list = []
    real_drop = batch_module.drop_captions

    def spy(text, negative, prob, generator):
        out = real_drop(text, negative, prob, generator)
        seen.append((out, negative))
        return out

    monkeypatch.setattr(batch_module, "drop_captions", spy)
    config = load_train_config("base", {**TINY, "loop.max_steps": 2, "drop.caption_prob": 1.0})
    train(config, out_dir=tmp_path / "run", model_path=tiny_model_dir, data_dir=prepared_dir)
    negative = LatentChunkDataset(prepared_dir).negative_text()
    assert len(seen) == 2
    for text, passed_negative in seen:
        assert torch.equal(passed_negative, negative)
        assert all(torch.equal(row, negative) for row in text)  # probability 1: every caption replaced
    with pytest.raises(ConfigError, match="caption_prob"):
        load_train_config("base", {"drop.caption_prob": 1.5})

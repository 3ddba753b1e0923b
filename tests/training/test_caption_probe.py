"""The caption probe (training/caption_probe.py): zero for a model that cannot see its text, non-zero and repeatable
for one that can, and usable on a prepared data folder and a checkpoint through `evaluate_caption_gap`; and its
role-swap variant `evaluate_role_swap_gap` (world captions with object and background colours exchanged)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import prepare_three_videos

from helios_core.bench.train_bench import build_transformer, synthetic_batch
from helios_core.errors import ConfigError
from helios_core.training import load_train_config
from helios_core.training.caption_probe import caption_gap, text_gap
from helios_core.training.evaluate import evaluate_caption_gap, evaluate_role_swap_gap
from helios_core.training.stages.base import BaseStage
from helios_core.training.stages.common import HistoryLayout
from helios_core.training.stages.mid import MidStage

CPU = torch.device("cpu")


def _setup(stage_name: str):
    config = load_train_config(stage_name, {"loop.batch_size": 2})
    layout = HistoryLayout(config.history)
    stage = (MidStage if stage_name == "mid" else BaseStage)(config, layout)
    model = build_transformer("tiny", CPU, seed=0).eval()
    generator = torch.Generator().manual_seed(3)
    batches = [synthetic_batch(config, layout, int(model.config.text_dim), 64, 64, 2, generator) for _ in range(2)]
    return stage, model, batches


@pytest.mark.parametrize("stage_name", ["base", "mid"])
def test_a_model_blind_to_its_text_has_no_gap_and_a_seeing_one_has_a_repeatable_one(stage_name: str) -> None:
    stage, model, batches = _setup(stage_name)
    seeing = caption_gap(stage, model, batches, seed=5, device=CPU)
    assert seeing == caption_gap(stage, model, batches, seed=5, device=CPU)  # same draws, same numbers
    assert abs(seeing["caption_gap"]) > 1e-7, seeing  # a random model reads its text only a little
    with torch.no_grad():  # cut the cross-attention output: the caption can no longer reach the prediction
        for block in model.blocks:
            block.attn2.to_out[0].weight.zero_()
            block.attn2.to_out[0].bias.zero_()
    blind = caption_gap(stage, model, batches, seed=5, device=CPU)
    assert blind["caption_gap"] == 0.0 and blind["own_caption_loss"] > 0, blind


def test_batches_of_one_sample_are_refused() -> None:
    stage, model, batches = _setup("base")
    single = [type(batches[0])(b.target[:1], b.history[:1], b.anchor[:1], b.text[:1]) for b in batches]
    with pytest.raises(ConfigError, match="at least 2 samples"):
        caption_gap(stage, model, single, seed=0, device=CPU)


def test_evaluate_on_prepared_data_and_refuse_the_distilled_stage(tiny_model_dir: Path, prepared_dir: Path) -> None:
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    result = evaluate_caption_gap(load_train_config("base", {"loop.batch_size": 2}), num_batches=1, **paths)
    assert result["own_caption_loss"] > 0 and result["swapped_caption_loss"] > 0
    with pytest.raises(ConfigError, match="caption probe covers"):
        evaluate_caption_gap(load_train_config("distilled", {}), **paths)


def test_the_same_text_on_both_sides_gives_exactly_no_gap() -> None:
    stage, model, batches = _setup("mid")
    own, other = text_gap(stage, model, batches, [batch.text.clone() for batch in batches], seed=5, device=CPU)
    assert own == other > 0


@pytest.fixture(scope="module")
def world_prepared_dir(tmp_path_factory, video_dir: Path, tiny_model_dir: Path) -> Path:
    captions = ("a small red square moving right on a blue background",
                "a large blue circle moving down on a green background",
                "a white star growing and a red circle bouncing on a black background")
    return prepare_three_videos(tmp_path_factory.mktemp("world_prepared"), video_dir, tiny_model_dir, captions,
                                "world_manifest.jsonl")


def test_role_swap_gap_on_world_captions(tiny_model_dir: Path, world_prepared_dir: Path) -> None:
    paths = {"model_path": tiny_model_dir, "data_dir": world_prepared_dir}
    config = load_train_config("mid", {"loop.batch_size": 2})
    result = evaluate_role_swap_gap(config, num_batches=2, **paths)
    assert result == evaluate_role_swap_gap(config, num_batches=2, **paths)  # fixed batches and draws
    # The same own loss as the caption probe on the same batches; the role-swapped text is a different text.
    assert result["own_caption_loss"] == pytest.approx(evaluate_caption_gap(config, num_batches=2,
                                                                            **paths)["own_caption_loss"])
    assert result["role_swapped_loss"] > 0 and result["role_swap_gap"] != 0.0


def test_role_swap_needs_world_captions_and_a_probed_stage(tiny_model_dir: Path, prepared_dir: Path,
                                                           world_prepared_dir: Path) -> None:
    with pytest.raises(ConfigError, match="needs world captions"):  # "a red square moves right" is not one
        evaluate_role_swap_gap(load_train_config("mid", {"loop.batch_size": 2}), model_path=tiny_model_dir,
                               data_dir=prepared_dir, num_batches=1)
    with pytest.raises(ConfigError, match="role-swap probe covers"):
        evaluate_role_swap_gap(load_train_config("distilled", {}), model_path=tiny_model_dir,
                               data_dir=world_prepared_dir)

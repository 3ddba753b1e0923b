"""LatentChunkDataset lays out target / history / anchor like the reference loader; SampleOrder is a pure function."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from helios_core.training import LatentChunkDataset, SampleOrder
from helios_core.training.prepared_index import read_index


def _shard_of(dataset: LatentChunkDataset, index: int) -> dict[str, torch.Tensor]:
    shard_number, _ = dataset.items[index]
    return {k: v.float() for k, v in load_file(str(dataset.shards[shard_number])).items()}


def test_samples_take_the_chunk_its_zero_padded_history_and_the_anchor(prepared_dir: Path):
    dataset = LatentChunkDataset(prepared_dir, history_frames=19)
    assert len(dataset) == 5  # 2 + 2 + 1 chunks
    for index, (_, k) in enumerate(dataset.items):
        sample, shard = dataset[index], _shard_of(dataset, index)
        assert torch.equal(sample.target, shard["latents"][k])
        assert torch.equal(sample.text, shard["text"])
        assert sample.history.shape == (16, 19, 8, 8)
        if k == 0:
            assert not sample.history.any() and not sample.anchor.any()
        else:
            past = shard["latents"][:k].permute(1, 0, 2, 3, 4).reshape(16, -1, 8, 8)  # (C, 9k, h, w)
            assert torch.equal(sample.history[:, -9 * k:], past[:, -19:])
            assert not sample.history[:, : 19 - 9 * k].any()  # zero padding in front
            assert torch.equal(sample.anchor, shard["first_frame"])


def test_history_without_anchor_has_one_more_frame(prepared_dir: Path):
    sample = LatentChunkDataset(prepared_dir, history_frames=20)[0]
    assert sample.history.shape[1] == 20


def test_sample_order_is_a_permutation_per_epoch_and_depends_only_on_seed_and_position(prepared_dir: Path):
    order = SampleOrder(5, seed=7)
    first_epoch = [order.item_at(p) for p in range(5)]
    second_epoch = [order.item_at(p) for p in range(5, 10)]
    assert sorted(first_epoch) == sorted(second_epoch) == list(range(5))
    assert [SampleOrder(5, 8).item_at(p) for p in range(20)] != [order.item_at(p) for p in range(20)]
    fresh = SampleOrder(5, seed=7)  # a resumed run builds a new order and jumps straight to its position
    assert [fresh.item_at(p) for p in (7, 3, 9)] == [second_epoch[2], first_epoch[3], second_epoch[4]]


def test_index_lists_prepared_videos(prepared_dir: Path):
    prepared, skipped = read_index(prepared_dir)
    assert len(prepared) == 3 and not skipped

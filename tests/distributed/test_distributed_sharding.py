"""Batch sharding without processes: every pending item exactly once, round-robin, and resume first."""

from __future__ import annotations

from pathlib import Path

import pytest

from helios_core.batch import load_prompts_file, split_done
from helios_core.distributed.sharding import assignment, items_for_rank


@pytest.mark.parametrize("num_items", [0, 1, 2, 5, 8, 13])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_every_item_once_across_ranks(num_items: int, world_size: int) -> None:
    items = [f"item{i}" for i in range(num_items)]
    shares = [items_for_rank(items, rank, world_size) for rank in range(world_size)]
    flat = [item for share in shares for item in share]
    assert sorted(flat) == sorted(items) and len(flat) == len(set(flat))
    # Balanced: no rank has more than one item more than another.
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_item_i_goes_to_rank_i_mod_n() -> None:
    assert assignment(5, 2) == [[0, 2, 4], [1, 3]]
    assert items_for_rank(["a", "b", "c", "d"], 1, 3) == ["b"]


def test_bad_rank_or_world_is_refused() -> None:
    with pytest.raises(ValueError):
        items_for_rank([1, 2], 2, 2)
    with pytest.raises(ValueError):
        items_for_rank([1, 2], 0, 0)


def test_sharding_runs_over_pending_items_after_resume(tmp_path: Path) -> None:
    prompts = tmp_path / "jobs.txt"
    prompts.write_text("".join(f"prompt number {i}\n" for i in range(6)))
    items = load_prompts_file(prompts)
    out = tmp_path / "out"
    out.mkdir()
    (out / items[0].output_name).write_bytes(b"done")
    (out / items[3].output_name).write_bytes(b"done")
    pending, done = split_done(items, out)
    shares = [items_for_rank(pending, rank, 2) for rank in range(2)]
    assert [i.index for i in shares[0]] == [2, 5] and [i.index for i in shares[1]] == [3, 6]
    assert not {i.index for s in shares for i in s} & {i.index for i in done}

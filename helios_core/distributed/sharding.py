"""Which rank makes which batch item: deterministic, no duplicates, every pending item exactly once.

The assignment is `pending[i] -> rank i % world_size`, computed over the PENDING items (after resume filtering), and
the pending list is fixed ONCE (by rank 0, then broadcast) before any rank starts. Re-checking which items are done
on each rank later would race with the other ranks' finished files and could hand an item to two ranks or none.

Round-robin rather than contiguous blocks: prompts files are often sorted by length or topic, so striding spreads
long and short items evenly over the GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def items_for_rank(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items rank `rank` of `world_size` makes: every `world_size`-th item starting at position `rank`."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    return list(items[rank::world_size])


def assignment(num_items: int, world_size: int) -> list[list[int]]:
    """Positions per rank, `assignment(5, 2) == [[0, 2, 4], [1, 3]]`: the whole plan, for messages and tests."""
    return [items_for_rank(range(num_items), rank, world_size) for rank in range(world_size)]

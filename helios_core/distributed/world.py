"""One process of a multi-process run: its rank, its device and the torch.distributed process group.

Workers are entered the same way whichever launcher started them: `launch_workers` (ours) and `torchrun` both set
the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), and `join_world` reads it.

Backends: NCCL where the ranks exchange GPU tensors (context parallelism); gloo where they only exchange small Python
objects (the batch's pending list and summaries) or run on CPUs (tests). Every collective helper here is a no-op
in a one-process run, so callers need no special case for `--gpus 1`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from helios_core.errors import ConfigError

T = TypeVar("T")

ENV_RANK, ENV_WORLD_SIZE, ENV_LOCAL_RANK = "RANK", "WORLD_SIZE", "LOCAL_RANK"


@dataclass(frozen=True)
class World:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True inside a process that torchrun (or `launch_workers`) started as one of several ranks."""
    return ENV_RANK in os.environ and int(os.environ.get(ENV_WORLD_SIZE, "1")) > 1


def env_world_size() -> int:
    return int(os.environ.get(ENV_WORLD_SIZE, "1"))


def join_world(*, cuda: bool, backend: str | None = None, timeout: timedelta = timedelta(hours=1)) -> World:
    """Initialise the default process group from the torchrun environment; rank r uses cuda:LOCAL_RANK (or the CPU).

    `backend` defaults to NCCL on GPUs and gloo on CPUs. `timeout` bounds how long a rank waits in a collective for
    the others: a batch rank that finishes early waits for the slowest one, so batches pass a long timeout.
    """
    rank = int(os.environ.get(ENV_RANK, "0"))
    world_size = env_world_size()
    local_rank = int(os.environ.get(ENV_LOCAL_RANK, str(rank)))
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"rank {rank} wants cuda:{local_rank}, but this machine has "
                              f"{torch.cuda.device_count()} CUDA GPU(s); pass a smaller --gpus")
        torch.cuda.set_device(local_rank)  # before NCCL starts: each rank's communicator lives on its own GPU
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"), rank=rank, world_size=world_size,
                                timeout=timeout)
    return World(rank, world_size, local_rank, device)


def leave_world() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_from_main(value: T) -> T:
    """Rank 0's `value` on every rank (pickled; for small objects such as a seed or a list of item indices)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_all(value: T) -> list[T]:
    """Every rank's `value`, in rank order, on every rank."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [value]
    boxes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(boxes, value)
    return boxes


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()

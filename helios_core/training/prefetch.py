"""Each step's augmented batch, built by one function, in the main process or ahead of time in worker processes.

A step's batch is a pure function of (seed, step, data position, rank): the sample order picks the items, the
shards are read, the history is dropped and corrupted and the captions dropped, every draw from the sample's own
generator (`step_random.py`). `BatchRecipe.build` is that function; the trainer's in-process path calls it directly.

With `loop.data_workers = N > 0`, a `torch.utils.data.DataLoader` with N worker processes calls the same function for
the steps to come (`StepBatches`: item i is the batch of step first_step + i), so reading and augmenting overlap the
GPU's work. The stage loss goes on drawing from the samples' generators after augmentation (sigma, noise, the mid
stage's pyramid level), so each item also carries the generators' states as augmentation left them; the main process
rebuilds the generators from them (`BatchPrefetcher.next`) and the loss draws exactly what it would have drawn in
process: a run with workers is bit-identical to one without (tested).

Only stages that take exactly one batch per step can use this: item i assumes step i's batch starts at
start_position + i x (global batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from helios_core.training.config import TrainConfig
from helios_core.training.dataset import LatentChunkDataset, SampleOrder, TrainingBatch
from helios_core.training.history_aug import augment_history, drop_captions
from helios_core.training.step_random import BatchRandom, StepRandom

PREFETCH_FACTOR = 4  # batches queued per worker: enough to ride out a slow shard read, little memory at batch 16


@dataclass(frozen=True)
class BatchRecipe:
    """What turns (step, sample index, data position) into one rank's augmented batch."""

    dataset: LatentChunkDataset
    order: SampleOrder
    config: TrainConfig
    negative_text: torch.Tensor | None  # the caption-dropout replacement; None when drop.caption_prob is 0

    def build(self, step: int, first_sample: int, position: int) -> tuple[TrainingBatch, BatchRandom]:
        """The batch of `batch_size` samples from `position` of the sample order, augmented with the generators of
        step `step` for global sample indices `first_sample` on, and those generators (the loss draws on from them)."""
        config = self.config
        batch_size = config.loop.batch_size
        random = StepRandom(config.loop.seed, step).for_samples(first_sample, batch_size)
        batch = self.order.batch(self.dataset, position, batch_size)
        batch.history, batch.anchor = augment_history(batch.history, batch.anchor, config.drop, config.corrupt,
                                                      config.history.latent_frames_per_chunk, random)
        if self.negative_text is not None:
            batch.text = drop_captions(batch.text, self.negative_text, config.drop.caption_prob, random)
        return batch, random


class PrefetchedBatch(NamedTuple):
    """A worker's answer: tensors only (a NamedTuple, so the DataLoader pins each tensor and passes it through)."""

    step: int
    target: torch.Tensor
    history: torch.Tensor
    anchor: torch.Tensor
    text: torch.Tensor
    sample_states: tuple[torch.Tensor, ...]  # Generator.get_state() of each sample's generator after augmentation
    batch_state: torch.Tensor  # ... and of the batch generator


class StepBatches(Dataset):
    """Map-style: item i is this rank's batch of step `first_step + i` (one global batch per step)."""

    def __init__(self, recipe: BatchRecipe, first_step: int, num_steps: int, start_position: int, rank: int,
                 world: int) -> None:
        self.recipe = recipe
        self.first_step, self.num_steps = first_step, num_steps
        self.start_position, self.rank, self.world = start_position, rank, world

    def __len__(self) -> int:
        return self.num_steps

    def __getitem__(self, index: int) -> PrefetchedBatch:
        if not 0 <= index < self.num_steps:
            raise IndexError(index)
        batch_size = self.recipe.config.loop.batch_size
        offset = self.rank * batch_size  # this rank's slice of the global batch, in the order and in the indices
        position = self.start_position + index * batch_size * self.world + offset
        batch, random = self.recipe.build(self.first_step + index, offset, position)
        return PrefetchedBatch(self.first_step + index, batch.target, batch.history, batch.anchor, batch.text,
                               tuple(g.get_state() for g in random.samples), random.batch.get_state())


def _one_thread(_worker_id: int) -> None:
    # N workers each with all cores' worth of intra-op threads would fight the main process and each other.
    torch.set_num_threads(1)


def _generator_from(state: torch.Tensor) -> torch.Generator:
    generator = torch.Generator("cpu")
    generator.set_state(state.cpu())  # set_state takes a plain CPU byte tensor (the pinned copy is one too)
    return generator


class BatchPrefetcher:
    """The steps' batches from `workers` worker processes, in step order, on `device`."""

    def __init__(self, batches: StepBatches, workers: int, device: torch.device) -> None:
        self.device = device
        self.pinned = device.type == "cuda"
        self.next_step = batches.first_step
        # shuffle=False and batch_size=None: the loader hands item i (step first_step + i) as it is, in order.
        self._loader = DataLoader(batches, batch_size=None, shuffle=False, num_workers=workers, pin_memory=self.pinned,
                                  persistent_workers=True, prefetch_factor=PREFETCH_FACTOR, worker_init_fn=_one_thread)
        self._iterator = iter(self._loader)

    def next(self) -> tuple[TrainingBatch, BatchRandom]:
        item = next(self._iterator)
        if item.step != self.next_step:  # the loader's order is the contract; a mix-up must not train silently
            raise RuntimeError(f"prefetched batch of step {item.step} arrived for step {self.next_step}")
        self.next_step += 1
        # Pinned host memory lets the copies run asynchronously; the stream orders them before the loss reads them.
        batch = TrainingBatch(*(t.to(self.device, non_blocking=self.pinned)
                                for t in (item.target, item.history, item.anchor, item.text)))
        random = BatchRandom(tuple(_generator_from(s) for s in item.sample_states), _generator_from(item.batch_state))
        return batch, random

    def close(self) -> None:
        """Stops the workers now (dropping the last references runs the DataLoader iterator's shutdown)."""
        self._iterator = None
        self._loader = None

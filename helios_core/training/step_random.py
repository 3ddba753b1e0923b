"""The random draws of a training step as a pure function of (seed, step, global sample index).

A multi-process run splits each global batch across ranks. If every rank drew from its own generator, the draws a
sample gets (its history layout and corruption, caption dropout, sigma, noise) would depend on which rank holds it
and on how many samples sit before it on that rank, so N processes at batch B would train differently from one
process at batch N x B. Instead, each sample of a step draws from its own generator, seeded from
(seed, step, index of the sample in the global batch), and draws shared by the whole batch (the mid stage's pyramid
level) come from a generator seeded from (seed, step) alone, the same on every rank. Any split of the global batch
then gives every sample the same draws, and resume needs no generator state: the step number is enough.

Code that has only one generator (evaluation, the caption probe, the bench) passes it in place of a `BatchRandom`;
`sample_generators` then hands that one generator to every sample in turn, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

_MASK64 = (1 << 64) - 1
_SAMPLE_STREAM, _BATCH_STREAM = 1, 2  # tags that keep the per-sample and batch-level seeds apart


def _splitmix64(value: int) -> int:
    """One step of SplitMix64: a well-spread 64-bit integer mix (Python's hash() is salted per process)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def mix_seed(*values: int) -> int:
    """A seed in [0, 2^63) that depends on every value and their order; the same in any process."""
    state = 0
    for value in values:
        state = _splitmix64(state ^ (value & _MASK64))
    return state >> 1


@dataclass(frozen=True)
class BatchRandom:
    """The generators of one rank's batch: one per sample, in batch order, and one for batch-level draws."""

    samples: tuple[torch.Generator, ...]
    batch: torch.Generator


class StepRandom:
    """Hands out the generators of training step `step` (0-based) of a run seeded with `seed`."""

    def __init__(self, seed: int, step: int) -> None:
        self.seed = seed
        self.step = step

    def for_sample(self, index: int) -> torch.Generator:
        """The generator of the sample at `index` in the step's global batch (rank r's j-th sample: r x B + j)."""
        return torch.Generator("cpu").manual_seed(mix_seed(self.seed, self.step, _SAMPLE_STREAM, index))

    def for_batch(self) -> torch.Generator:
        """The generator of draws shared by the whole global batch: the same on every rank."""
        return torch.Generator("cpu").manual_seed(mix_seed(self.seed, self.step, _BATCH_STREAM))

    def for_samples(self, first: int, count: int) -> BatchRandom:
        """Generators for the `count` samples from global index `first` on, plus the batch generator."""
        return BatchRandom(tuple(self.for_sample(first + i) for i in range(count)), self.for_batch())


Random = torch.Generator | BatchRandom


def sample_generators(random: Random, size: int) -> Sequence[torch.Generator]:
    """The generator each of `size` samples draws from: its own, or the caller's single generator for all."""
    if isinstance(random, torch.Generator):
        return [random] * size
    if len(random.samples) != size:
        raise ValueError(f"{len(random.samples)} sample generators for a batch of {size}")
    return random.samples


def batch_generator(random: Random) -> torch.Generator:
    """The generator of batch-level draws: the batch one, or the caller's single generator."""
    return random if isinstance(random, torch.Generator) else random.batch

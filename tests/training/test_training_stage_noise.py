"""sample_noise: each sample's noise comes from its own generator, the same however it is drawn (threads or not)."""

import pytest
import torch

from helios_core.training.stages.common import PARALLEL_NOISE_MIN, sample_noise


def one_by_one(shape, seeds):
    """The plain reference: sample b is randn(shape[1:]) from a generator seeded seeds[b], drawn in order."""
    return torch.stack([torch.randn(shape[1:], generator=torch.Generator().manual_seed(s)) for s in seeds])


@pytest.mark.parametrize("shape", [(3, 2, 4, 4), (6, 16, 9, 16, 32)])  # below and above PARALLEL_NOISE_MIN
def test_noise_equals_drawing_each_sample_in_turn(shape):
    seeds = [11, 5, 7, 1, 2, 3][: shape[0]]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    noise = sample_noise(torch.Size(shape), generators, torch.device("cpu"))
    assert torch.equal(noise, one_by_one(shape, seeds))
    # The generators moved on exactly as far as the reference's: the next draw matches too.
    follow = torch.stack([torch.randn(1, generator=g) for g in generators])
    reference = [torch.Generator().manual_seed(s) for s in seeds]
    for g in reference:
        torch.randn(shape[1:], generator=g)
    assert torch.equal(follow, torch.stack([torch.randn(1, generator=g) for g in reference]))


def test_the_large_case_really_takes_the_threaded_path():
    assert 6 * 16 * 9 * 16 * 32 >= PARALLEL_NOISE_MIN > 3 * 2 * 4 * 4

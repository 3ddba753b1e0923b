"""Training and the engine's samplers agree on what the model's output means.

A perfect model of one clip x0 predicts exactly the velocity each training stage regresses onto. That "oracle" is
derived here from the stage's own noising (BaseStage: x_t = (1 - s) x0 + s eps, t = 1000 s; MidStage: its start and
end points, sigmas and timestep ranges), then handed to the engine's `ChunkDenoiser` in place of the transformer.
If the samplers read velocities the way training writes them (sign, timestep scale, per-stage sigmas, pyramid
down/upsampling and re-noise), every sampler turns noise into x0. A wrong timestep map is shown to fail, so the check
can tell agreement from luck.
"""

from __future__ import annotations

import pytest
import torch

from helios_core.config import SamplerConfig
from helios_core.model.tiny import scheduler_config_for
from helios_core.samplers import ChunkDenoiser, TextConditioning
from helios_core.samplers.pyramid import upsample_nearest
from helios_core.training.config import load_train_config
from helios_core.training.stages.common import HistoryLayout
from helios_core.training.stages.mid import MidStage, downsample

SHAPE = (1, 4, 9, 8, 16)  # (B, C, T, h, w): 2x4 latents at the coarsest of three pyramid levels


def clip_latents() -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(0)) * 0.9 - 0.25


def base_oracle(x0: torch.Tensor):
    """E[eps - x0 | x_t] for a one-clip data set, with BaseStage's noising (timestep = 1000 sigma)."""
    def predict(latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        sigma = float(timestep[0]) / 1000
        eps = (latents - (1 - sigma) * x0) / sigma
        return eps - x0
    return predict


def mid_oracle(x0: torch.Tensor, stage: MidStage, timestep_of_r=None):
    """E[start_k - end_k | x_t] for a one-clip data set, with MidStage's points, read off the latents' size."""
    num_stages = len(stage.start_sigmas)
    width_to_stage = {x0.shape[-1] // 2 ** (num_stages - 1 - k): k for k in range(num_stages)}

    def predict(latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        k = width_to_stage[latents.shape[-1]]
        factor = 2 ** (num_stages - 1 - k)
        clean = downsample(x0, factor)
        lower = upsample_nearest(downsample(x0, factor * 2)) if k > 0 else clean
        s, e = stage.start_sigmas[k], stage.end_sigmas[k]
        t_min, t_max = stage.timestep_ranges[k]
        # training: timestep = t_min + r (t_max - t_min); invert it (a deliberately wrong map can be swapped in)
        r = (float(timestep[0]) - t_min) / (t_max - t_min) if timestep_of_r is None else timestep_of_r(timestep, k)
        eps = (latents - r * (1 - s) * lower - (1 - r) * (1 - e) * clean) / (r * s + (1 - r) * e)
        return (s - e) * eps + (1 - s) * lower - (1 - e) * clean
    return predict


def sample(kind: str, steps: tuple[int, ...], scheduler: str, predict) -> torch.Tensor:
    denoiser = ChunkDenoiser(SamplerConfig(kind=kind, steps=steps), scheduler_config_for(scheduler), (1, 2, 2))
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(SHAPE, generator=generator)
    text = TextConditioning(torch.zeros(1, 4, 8), None)
    return denoiser.denoise(noise, predict, text, generator, is_first_chunk=True)


def mid_stage() -> MidStage:
    config = load_train_config("mid")
    return MidStage(config, HistoryLayout(config.history))


@pytest.mark.parametrize("kind,steps", [("pyramid_unipc", (10, 10, 10)), ("pyramid_unipc", (2, 2, 2)),
                                        ("pyramid_dmd", (1, 1, 1))])
def test_pyramid_samplers_turn_the_mid_stage_oracle_into_the_clip(kind: str, steps: tuple[int, ...]):
    x0 = clip_latents()
    out = sample(kind, steps, "dmd" if kind == "pyramid_dmd" else "unipc3", mid_oracle(x0, mid_stage()))
    # not exactly zero: the pyramid sampler truncates timesteps to integers, as the reference does
    assert ((out - x0) ** 2).mean() < 1e-3 * x0.var()


def test_flow_unipc_turns_the_base_stage_oracle_into_the_clip():
    x0 = clip_latents()
    out = sample("flow_unipc", (10,), "unipc", base_oracle(x0))
    assert ((out - x0) ** 2).mean() < 1e-4 * x0.var()


@pytest.mark.parametrize("kind,steps", [("pyramid_unipc", (2, 2, 2)), ("pyramid_dmd", (1, 1, 1))])
def test_a_wrong_timestep_map_is_caught(kind: str, steps: tuple[int, ...]):
    """Reading the mid stage's timesteps as if they were the base stage's (r = t / 1000) must not recover the clip.
    (Few steps: with many, even a wrong oracle is pulled onto the clip it knows by the last steps.)"""
    x0 = clip_latents()
    wrong = mid_oracle(x0, mid_stage(), timestep_of_r=lambda timestep, k: float(timestep[0]) / 1000)
    out = sample(kind, steps, "dmd" if kind == "pyramid_dmd" else "unipc3", wrong)
    assert ((out - x0) ** 2).mean() > 0.1 * x0.var()

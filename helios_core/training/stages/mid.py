"""Stage 2 (Helios-Mid): pyramid training, so the three-stage pyramid sampler has a model for every stage.

Each step picks a pyramid stage k (coarsest first, with `pyramid.sample_ratios`) and trains the noisy chunk at that
stage's resolution (downsampled 4x / 2x / 1x for three stages; the history always stays at full resolution, as in
the sampler). Stage k runs between its start and end points (PyramidFlow's piecewise flow, reference §1(e)):

    end_k   = e_k eps + (1 - e_k) x0_k                 x0_k = x0 bilinearly downsampled to stage k
    start_k = s_k eps + (1 - s_k) up(x0_{k-1})        up = nearest x2 (the sampler's upsample); x0_{-1} := x0_0
    x_t = r start_k + (1 - r) end_k,   target = start_k - end_k,   timestep = t_min_k + r (t_max_k - t_min_k)

with s_k (upsample-corrected), e_k and the timestep range [t_min_k, t_max_k] read from diffusers' HeliosScheduler
built with the same stages / stage_range / gamma the sampler uses, and r ~ `timestep.sampling` in (0, 1).
All samples of one batch share the stage (the reference packs the three levels of a sample NaViT-style instead):
the level comes from the step's batch-level generator, the same on every rank, and r and the noise from each
sample's own generator (`step_random`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import HeliosScheduler

from helios_core.samplers.pyramid import upsample_nearest
from helios_core.training.config import TrainConfig
from helios_core.training.dataset import TrainingBatch
from helios_core.training.stages.common import HistoryLayout, broadcast, sample_noise, sample_unit
from helios_core.training.step_random import Random, batch_generator, sample_generators


def downsample(latents: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C, T, h, w) -> (B, C, T, h / factor, w / factor), bilinear per frame (no amplitude change: data, not noise)."""
    if factor == 1:
        return latents
    batch, channels, frames, height, width = latents.shape
    flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)
    flat = F.interpolate(flat, size=(height // factor, width // factor), mode="bilinear", align_corners=False)
    return flat.reshape(batch, frames, channels, height // factor, width // factor).permute(0, 2, 1, 3, 4)


class MidStage:
    def __init__(self, config: TrainConfig, layout: HistoryLayout) -> None:
        self.config = config
        self.layout = layout
        p = config.pyramid
        scheduler = HeliosScheduler(stages=p.num_stages, stage_range=list(p.stage_range), gamma=p.gamma)
        self.start_sigmas = [float(scheduler.start_sigmas[k]) for k in range(p.num_stages)]
        self.end_sigmas = [float(scheduler.end_sigmas[k]) for k in range(p.num_stages)]
        self.timestep_ranges = [(float(scheduler.timesteps_per_stage[k].min()),
                                 float(scheduler.timesteps_per_stage[k].max())) for k in range(p.num_stages)]
        self.ratios = torch.tensor(p.sample_ratios, dtype=torch.float64)
        self.last_metrics: dict[str, int] = {}

    def pick_stage(self, generator: torch.Generator) -> int:
        return int(torch.multinomial(self.ratios, 1, generator=generator))

    def loss(self, model: torch.nn.Module, batch: TrainingBatch, random: Random) -> torch.Tensor:
        k = self.pick_stage(batch_generator(random))  # one level for the global batch: the same on every rank
        self.last_metrics = {"level": k}  # logged: a step's cost depends on its level (16x the tokens at full size)
        num_stages = self.config.pyramid.num_stages
        factor = 2 ** (num_stages - 1 - k)
        x0 = batch.target
        clean = downsample(x0, factor)
        lower = upsample_nearest(downsample(x0, factor * 2)) if k > 0 else clean
        generators = sample_generators(random, x0.shape[0])
        r = sample_unit(self.config.timestep, generators)
        noise = sample_noise(clean.shape, generators, x0.device)
        s_k, e_k = self.start_sigmas[k], self.end_sigmas[k]
        start = s_k * noise + (1 - s_k) * lower
        end = e_k * noise + (1 - e_k) * clean
        rb = broadcast(r, clean)
        noisy = rb * start + (1 - rb) * end
        t_min, t_max = self.timestep_ranges[k]
        timestep = (t_min + r * (t_max - t_min)).to(x0.device)
        velocity = self.layout.forward(model, noisy, timestep, batch.text, batch.history, batch.anchor)
        return F.mse_loss(velocity.float(), (start - end).float())

"""Stage 3, `distill.method: pyramid_ode`: ODE-pair regression on exactly what the pyramid DMD sampler with one step
per stage (the `default` preset's [1, 1, 1]) feeds the model.

Per step, from the run's per-rank generator:

    eps ~ N(0, I) at full latent resolution          X = teacher(eps)   (`stages/teacher.py`, frozen, no grad)
    X_k = bilinear downsample of X by 2^(K-1-k)      (the stage-k target; K pyramid stages, coarsest k = 0)
    z_0 = downsample_noise(eps, K)                    (the sampler's start latents)
    z_k = alpha_k up(X_{k-1}) + beta_k block_noise   (k > 0: the sampler's re-noising, fed the teacher's X_{k-1})
    x0_k = z_k - sigma_k v_student(z_k, t_k)          loss = regression_weight * mean_k mse(x0_k, X_k)

t_k and sigma_k are diffusers' HeliosDMDScheduler tables for stage k with one step, the Flux shift mu read off the
latents before the stage's upsample, and x0_k is that scheduler's own `convert_flow_pred_to_x0` (what `step`
returns at a stage's last step), so training and the sampler cannot read a velocity differently
(tests/training/test_training_pyramid_ode.py runs both on an oracle model). All K stages train every step: their
forwards are cheap next to the teacher's sampling. The stage-k input is teacher-forced (built from X_{k-1}, not from
the student's own stage k-1 output), so every stage learns the map the sampler needs from an on-trajectory input.

Why not `ode` (`stages/distilled.py`): it regresses at straight-line points (1 - s) X + s eps at FULL resolution with
timestep 1000 s. The [1, 1, 1] sampler never shows the model such inputs: it calls it at 1/4, 1/2 and full
resolution, each time at sigma ~ 0.999 of its stage's own (shifted) timestep range, on block-noised upsampled
latents. A student trained by `ode` is therefore sampled off its training distribution (and that run diverged).

The scheduler comes from the training model folder's config, as the sampler's does: export the student with the
folder's scheduler kept (`scheduler: keep`) so the engine samples it with the same tables. The amplified first
chunk (2 * steps + 1 timesteps) is not simulated, as in `stages/dmd_rollout.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from helios_core.errors import ConfigError
from helios_core.samplers import build_scheduler
from helios_core.samplers.denoise import flux_shift
from helios_core.samplers.pyramid import block_noise, downsample_noise, renoise_coefficients, upsample_nearest
from helios_core.training.config import TrainConfig
from helios_core.training.dataset import TrainingBatch
from helios_core.training.stages.common import HistoryLayout
from helios_core.training.stages.mid import downsample
from helios_core.training.stages.teacher import ChunkTeacher


@dataclass
class StudentInput:
    """One pyramid stage's model call, as the sampler makes it, and the tables its x0 conversion reads."""

    latents: torch.Tensor  # z_k (B, C, T, h_k, w_k) float32
    timestep: torch.Tensor  # (B,) int64, what the sampler passes to the model
    sigmas: torch.Tensor  # the scheduler's stage tables after set_timesteps(1, k)
    timesteps: torch.Tensor


class PyramidOdeStage:
    def __init__(self, config: TrainConfig, layout: HistoryLayout, scheduler_config: dict,
                 patch_size: tuple[int, int, int], negative_text: torch.Tensor,
                 frozen_teacher: torch.nn.Module | None) -> None:
        self.config = config
        self.layout = layout
        self.num_stages = config.pyramid.num_stages
        if self.num_stages < 2:
            raise ConfigError("distill.method=pyramid_ode needs pyramid.num_stages >= 2 (it trains the pyramid "
                              f"sampler's stages), got {self.num_stages}")
        self.teacher = ChunkTeacher(config.distill, layout, scheduler_config, patch_size, negative_text,
                                    frozen_teacher)
        self.scheduler = build_scheduler("pyramid_dmd", scheduler_config, self.num_stages)
        self.patch_size = tuple(patch_size)
        self.raw_model: torch.nn.Module | None = None  # the model without a DDP wrapper, for switching the adapter
        self.last_metrics: dict[str, float] = {}

    def _tokens(self, latents: torch.Tensor) -> int:
        return int(np.prod(latents.shape[-3:])) // int(np.prod(self.patch_size))

    def targets(self, endpoint: torch.Tensor) -> list[torch.Tensor]:
        """X_k for every stage, coarsest first."""
        return [downsample(endpoint, 2 ** (self.num_stages - 1 - k)) for k in range(self.num_stages)]

    def student_inputs(self, noise: torch.Tensor, targets: list[torch.Tensor],
                       generator: torch.Generator) -> list[StudentInput]:
        """Each stage's input as `ChunkDenoiser._denoise_pyramid` builds it with one step per stage, given that stage
        k-1 ended on targets[k-1]; block noise is drawn from `generator` in the sampler's order."""
        scheduler = self.scheduler
        gamma = scheduler.config.gamma
        latents = downsample_noise(noise, self.num_stages)
        inputs = []
        for stage in range(self.num_stages):
            previous = latents if stage == 0 else targets[stage - 1]
            # mu from the latents before this stage's upsample (the previous stage's size), as the sampler reads it
            mu = flux_shift(self._tokens(previous), scheduler.config)
            scheduler.set_timesteps(1, stage, device=noise.device, mu=mu)
            if stage > 0:
                latents = upsample_nearest(previous)
                alpha, beta = renoise_coefficients(scheduler.ori_start_sigmas[stage], gamma)
                renoise = block_noise(tuple(latents.shape), gamma, generator, self.patch_size[1:])
                latents = alpha * latents + beta * renoise.to(latents.device)
            # set_timesteps makes new tensors, so these stay this stage's tables
            timestep = scheduler.timesteps[0].expand(latents.shape[0]).to(torch.int64)
            inputs.append(StudentInput(latents, timestep, scheduler.sigmas, scheduler.timesteps))
        return inputs

    def loss(self, model: torch.nn.Module, batch: TrainingBatch, generator: torch.Generator) -> torch.Tensor:
        x0 = batch.target
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        targets = self.targets(self.teacher.endpoint(self.raw_model or model, batch, noise, generator))
        losses = []
        for student, target in zip(self.student_inputs(noise, targets, generator), targets):
            velocity = self.layout.forward(model, student.latents, student.timestep, batch.text, batch.history,
                                           batch.anchor)
            # the DMD scheduler's step at a stage's last step: x0 = z - sigma v, in float64, back to float32
            prediction = self.scheduler.convert_flow_pred_to_x0(velocity.float(), student.latents, student.timestep,
                                                                student.sigmas, student.timesteps)
            losses.append(F.mse_loss(prediction.float(), target))
        self.last_metrics = {f"stage{k}_mse": float(value.detach()) for k, value in enumerate(losses)}
        return self.config.distill.regression_weight * torch.stack(losses).mean()

"""The DMD generator's rollout: the project's pyramid DMD sampler, with gradients kept at one exit step per stage.

Same arithmetic as `ChunkDenoiser._denoise_pyramid` for `pyramid_dmd` (diffusers' HeliosDMDScheduler tables, the
Flux dynamic shift read before each stage's upsample, nearest upsample + block-noise re-noising between stages, and
x0 re-noised towards the next timestep with the stage's start latent as the noise). What differs is training-only:

    per stage k an exit step e_k ~ uniform{0 .. steps_k - 1} is drawn (from the run's generator)
    steps before e_k run without gradient; step e_k runs with gradient and ends the stage with its x0 prediction

(the backward-simulation of DMD / Self-Forcing, per pyramid stage as in the reference). The gradient therefore
chains across stages only where a later stage exits at its first step (always with one step per stage, the 3-step
model); with more steps per stage, the no-grad steps before a later exit cut the chain, which bounds memory to one
forward graph per stage at most. The amplified first chunk (2 * steps + 1 timesteps on chunk 0) is not simulated:
training batches are windows anywhere in a video.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from helios_core.config import SamplerConfig
from helios_core.samplers import build_scheduler
from helios_core.samplers.denoise import flux_shift
from helios_core.samplers.pyramid import block_noise, downsample_noise, renoise_coefficients, upsample_nearest

VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (latents, timestep (B,)) -> velocity


class PyramidRollout:
    def __init__(self, steps: tuple[int, ...], scheduler_config: dict, patch_size: tuple[int, int, int]) -> None:
        sampler = SamplerConfig(kind="pyramid_dmd", steps=tuple(steps), guidance_scale=1.0)
        sampler.validate()
        self.steps = tuple(steps)
        self.scheduler = build_scheduler("pyramid_dmd", scheduler_config, sampler.num_stages)
        self.patch_size = tuple(patch_size)

    def draw_exits(self, generator: torch.Generator) -> list[int]:
        return [int(torch.randint(0, n, (1,), generator=generator)) for n in self.steps]

    def _tokens(self, latents: torch.Tensor) -> int:
        return int(np.prod(latents.shape[-3:])) // int(np.prod(self.patch_size))

    def run(self, noise: torch.Tensor, velocity_of: VelocityFn, generator: torch.Generator, exits: list[int],
            *, with_grad: bool) -> torch.Tensor:
        """Clean latents (B, C, T, h, w) float32 from full-resolution `noise`; differentiable at the exit steps."""
        scheduler = self.scheduler
        num_stages = len(self.steps)
        gamma = scheduler.config.gamma
        latents = downsample_noise(noise, num_stages)
        start_point = latents
        for stage in range(num_stages):
            mu = flux_shift(self._tokens(latents), scheduler.config)  # before the upsample, as the sampler does
            scheduler.set_timesteps(self.steps[stage], stage, device=latents.device, mu=mu)
            if stage > 0:
                latents = upsample_nearest(latents)
                alpha, beta = renoise_coefficients(scheduler.ori_start_sigmas[stage], gamma)
                renoise = block_noise(tuple(latents.shape), gamma, generator, self.patch_size[1:])
                latents = alpha * latents + beta * renoise.to(latents.device)
                start_point = latents
            timesteps, sigmas = scheduler.timesteps, scheduler.sigmas
            for i, t in enumerate(timesteps):
                timestep = t.expand(latents.shape[0]).to(torch.int64)
                is_exit = i == exits[stage]
                with torch.set_grad_enabled(with_grad and is_exit):
                    velocity = velocity_of(latents, timestep).float()
                    if is_exit:
                        exit_timestep = torch.full((latents.shape[0],), t.item(), dtype=torch.long,
                                                   device=latents.device)
                        latents = scheduler.convert_flow_pred_to_x0(velocity, latents, exit_timestep, sigmas,
                                                                    timesteps).float()
                        break
                    latents = scheduler.step(velocity, t, latents, generator=generator, return_dict=False,
                                             cur_sampling_step=i, dmd_noisy_tensor=start_point, dmd_sigmas=sigmas,
                                             dmd_timesteps=timesteps, all_timesteps=timesteps)[0].float()
        return latents

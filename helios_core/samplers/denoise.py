"""Denoise one chunk: noise in, clean latents out, for each of the three samplers.

The transformer is hidden behind `predict(latents, timestep, text_embeds) -> velocity`, a closure the pipeline builds
with the chunk's history, so this module knows only noise levels, guidance and the pyramid. Timestep tables come from
diffusers' `HeliosScheduler` (flow UniPC) and `HeliosDMDScheduler` (DMD), built from the model folder's
`scheduler_config.json`; the per-stage dynamic shift `mu` follows the reference's (unclamped) Flux line of the
stage's noisy token count.

Every random draw takes the caller's generator, in the reference's order, so seeded runs reproduce diffusers'.
Latents stay float32 between steps whatever the transformer's dtype: the scheduler arithmetic is where bf16 rounding
would accumulate over a minute of video.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import HeliosDMDScheduler, HeliosScheduler

from helios_core.config import SamplerConfig
from helios_core.host_copy import host_to_device
from helios_core.samplers.guidance import guide
from helios_core.samplers.pyramid import block_noise, downsample_noise, renoise_coefficients, upsample_nearest

PredictFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TextConditioning:
    cond: torch.Tensor  # (B, L, D) in the transformer's dtype
    uncond: torch.Tensor | None  # same, for classifier-free guidance


def build_scheduler(kind: str, folder_config: dict[str, Any], num_stages: int) -> HeliosScheduler | HeliosDMDScheduler:
    """The diffusers scheduler for a sampler kind, taking the model folder's settings where the class has them."""
    cls = HeliosDMDScheduler if kind == "pyramid_dmd" else HeliosScheduler
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    settings = {k: v for k, v in folder_config.items() if k in accepted}
    settings["stages"] = num_stages
    stage_range = settings.get("stage_range")
    if stage_range is not None and len(stage_range) != num_stages + 1:
        # A folder saved for another stage count (a Base folder, one stage, run with a pyramid preset): its range
        # cannot index this many stages, so the stages split [0, 1] evenly, as the released pyramid configs do.
        settings["stage_range"] = [i / num_stages for i in range(num_stages + 1)]
    if cls is HeliosScheduler:
        settings["scheduler_type"] = "unipc"
    return cls(**settings)


def flux_shift(num_tokens: int, config: Any) -> float:
    """The reference's dynamic-shift line: 256 tokens -> 0.5, 4096 -> 1.15, extrapolated (not clamped)."""
    base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base_shift, max_shift = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return num_tokens * slope + (base_shift - slope * base_len)


class ChunkDenoiser:
    def __init__(self, sampler: SamplerConfig, scheduler_config: dict[str, Any], patch_size: tuple[int, int, int]):
        self.sampler = sampler
        self.scheduler = build_scheduler(sampler.kind, scheduler_config, sampler.num_stages)
        self.patch_size = tuple(patch_size)

    def _tokens(self, latents: torch.Tensor) -> int:
        return int(np.prod(latents.shape[-3:])) // int(np.prod(self.patch_size))

    def _velocity(self, predict: PredictFn, latents: torch.Tensor, timestep: torch.Tensor, text: TextConditioning,
                  zero_out: bool, stage: int = 0) -> torch.Tensor:
        cond = predict(latents, timestep, text.cond).float()
        if not self.sampler.guided(stage):
            return cond
        uncond = predict(latents, timestep, text.uncond).float()
        s = self.sampler
        return guide(cond, uncond, s.guidance_scale, cfg_zero_star=s.cfg_zero_star, zero_out=zero_out)

    def denoise(
        self,
        noise: torch.Tensor,  # (B, C, T, h, w) float32, full latent resolution
        predict: PredictFn,
        text: TextConditioning,
        generator: torch.Generator | None,
        *,
        is_first_chunk: bool,
    ) -> torch.Tensor:
        if self.sampler.kind == "flow_unipc":
            return self._denoise_flat(noise, predict, text, generator)
        return self._denoise_pyramid(noise, predict, text, generator, is_first_chunk=is_first_chunk)

    def _denoise_flat(self, latents, predict, text, generator) -> torch.Tensor:
        steps = self.sampler.steps[0]
        sigmas = np.linspace(0.999, 0.0, steps + 1)[:-1]
        mu = flux_shift(self._tokens(latents), self.scheduler.config)
        self.scheduler.set_timesteps(steps, device=latents.device, sigmas=sigmas, mu=mu)
        for t in self.scheduler.timesteps:
            timestep = t.expand(latents.shape[0])  # (B,) float, as the reference's single-stage path
            velocity = self._velocity(predict, latents, timestep, text, zero_out=False)
            latents = self.scheduler.step(velocity, t, latents, generator=generator, return_dict=False)[0]
        return latents

    def _denoise_pyramid(self, noise, predict, text, generator, *, is_first_chunk: bool) -> torch.Tensor:
        s, scheduler = self.sampler, self.scheduler
        is_dmd = s.kind == "pyramid_dmd"
        amplify = is_dmd and s.amplify_first_chunk and is_first_chunk
        latents = downsample_noise(noise, s.num_stages)  # (B, C, T, h/4, w/4) for three stages
        start_point = latents
        for stage in range(s.num_stages):
            # As the reference: mu is read off the latents *before* this stage's upsample, i.e. the previous stage's
            # token count for stages > 0 (the released models were sampled this way).
            mu = flux_shift(self._tokens(latents), scheduler.config)
            scheduler.set_timesteps(s.steps[stage], stage, device=latents.device, mu=mu, is_amplify_first_chunk=amplify)
            if stage > 0:
                latents = upsample_nearest(latents)
                alpha, beta = renoise_coefficients(scheduler.ori_start_sigmas[stage], scheduler.config.gamma)
                renoise = block_noise(tuple(latents.shape), scheduler.config.gamma, generator, self.patch_size[1:])
                latents = alpha * latents + beta * host_to_device(renoise, latents.device)
                start_point = latents
            timesteps = scheduler.timesteps
            for i, t in enumerate(timesteps):
                timestep = t.expand(latents.shape[0]).to(torch.int64)
                zero_out = s.zero_init and stage == 0 and i <= s.zero_init_steps
                velocity = self._velocity(predict, latents, timestep, text, zero_out=zero_out, stage=stage)
                extra = {}
                if is_dmd:
                    # DMD re-noises x0 towards the next timestep with the stage's own start latent as the noise.
                    extra = dict(cur_sampling_step=i, dmd_noisy_tensor=start_point, dmd_sigmas=scheduler.sigmas,
                                 dmd_timesteps=scheduler.timesteps, all_timesteps=timesteps)
                latents = scheduler.step(velocity, t, latents, generator=generator, return_dict=False, **extra)[0]
                latents = latents.float()
        return latents

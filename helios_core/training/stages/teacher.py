"""The frozen teacher of the ODE-pair distillation methods (`ode`, `pyramid_ode`): noise in, the teacher's x0 out.

The teacher is the starting weights (the adapter switched off under LoRA, or a frozen copy under full fine-tuning,
`model_setup.teacher_view`), sampled with the project's own `ChunkDenoiser` (`distill.teacher_sampler`,
`teacher_steps`, `teacher_guidance` with the dataset's negative prompt, `teacher_cfg_zero_star`) given the batch's
history, anchor and caption. Chunks are never the first of a video here (`is_first_chunk=False`): training windows
sit anywhere in a clip. Its random draws (pyramid re-noising) come from the caller's generator, in sampler order.
"""

from __future__ import annotations

import torch

from helios_core.config import SamplerConfig
from helios_core.samplers import ChunkDenoiser, TextConditioning
from helios_core.training.config import DistillConfig
from helios_core.training.dataset import TrainingBatch
from helios_core.training.model_setup import teacher_view
from helios_core.training.stages.common import HistoryLayout


class ChunkTeacher:
    def __init__(self, distill: DistillConfig, layout: HistoryLayout, scheduler_config: dict,
                 patch_size: tuple[int, int, int], negative_text: torch.Tensor,
                 frozen_teacher: torch.nn.Module | None) -> None:
        sampler = SamplerConfig(kind=distill.teacher_sampler, steps=tuple(distill.teacher_steps),
                                guidance_scale=distill.teacher_guidance, cfg_zero_star=distill.teacher_cfg_zero_star)
        sampler.validate()
        self.layout = layout
        self.denoiser = ChunkDenoiser(sampler, scheduler_config, patch_size)
        self.negative_text = negative_text  # (L, D)
        self.frozen_teacher = frozen_teacher

    @torch.no_grad()
    def endpoint(self, model: torch.nn.Module, batch: TrainingBatch, noise: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
        """The teacher's clean latents (float32, the shape of `noise`). `model` must be unwrapped (no DDP) under
        LoRA: its adapter is switched off for the teacher's forwards and back on afterwards."""
        uncond = self.negative_text.to(batch.text).unsqueeze(0).expand_as(batch.text)
        text = TextConditioning(cond=batch.text, uncond=uncond)
        with teacher_view(model, self.frozen_teacher) as teacher:
            was_training = teacher.training
            teacher.eval()

            def predict(latents: torch.Tensor, timestep: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
                return self.layout.forward(teacher, latents, timestep, embeds, batch.history, batch.anchor)

            try:
                endpoint = self.denoiser.denoise(noise, predict, text, generator, is_first_chunk=False)
            finally:
                teacher.train(was_training)
        return endpoint.float()

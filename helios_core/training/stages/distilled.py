"""Stage 3, phase (i): ODE-pair regression, the warm start of the few-step distilled model.

Per step, the frozen teacher (the starting weights: the adapter switched off, or a frozen copy under full
fine-tuning; `stages/teacher.py`) denoises the batch's chunk from noise eps with the project's own sampler
(`ChunkDenoiser`: pyramid UniPC with CFG / CFG-Zero*, or flat flow UniPC), given the same history and caption as
the student. That makes the pair (eps, x0_teacher). The student then predicts x0 in one step from a point on the
straight line between them:

    sigma ~ one of `distill.student_sigmas`     x_t = (1 - sigma) x0_teacher + sigma eps
    x0_student = x_t - sigma v_student(x_t, 1000 sigma)     loss = weight * mean((x0_student - x0_teacher)^2)

Differences from the reference (§1(e)): pairs are made on the fly rather than precomputed with
`get_ode-pairs.py`, and the student regresses at straight-line points instead of at the teacher's stored
trajectory latents (ChunkDenoiser does not expose its intermediate latents). Phase (ii), DMD, is `stages/dmd.py`;
`stages/pyramid_ode.py` is a variant of this phase that trains on the pyramid DMD sampler's own inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helios_core.training.config import TrainConfig
from helios_core.training.dataset import TrainingBatch
from helios_core.training.stages.common import HistoryLayout, broadcast
from helios_core.training.stages.teacher import ChunkTeacher


class DistilledStage:
    def __init__(self, config: TrainConfig, layout: HistoryLayout, scheduler_config: dict,
                 patch_size: tuple[int, int, int], negative_text: torch.Tensor,
                 frozen_teacher: torch.nn.Module | None) -> None:
        self.config = config
        self.layout = layout
        self.teacher = ChunkTeacher(config.distill, layout, scheduler_config, patch_size, negative_text,
                                    frozen_teacher)
        self.student_sigmas = torch.tensor(config.distill.student_sigmas, dtype=torch.float32)
        self.raw_model: torch.nn.Module | None = None  # the model without a DDP wrapper, for switching the adapter

    def teacher_endpoint(self, model: torch.nn.Module, batch: TrainingBatch, noise: torch.Tensor,
                         generator: torch.Generator) -> torch.Tensor:
        return self.teacher.endpoint(self.raw_model or model, batch, noise, generator)

    def loss(self, model: torch.nn.Module, batch: TrainingBatch, generator: torch.Generator) -> torch.Tensor:
        x0 = batch.target
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        target = self.teacher_endpoint(model, batch, noise, generator)
        pick = torch.randint(0, len(self.student_sigmas), (x0.shape[0],), generator=generator)
        sigma = self.student_sigmas[pick]
        s = broadcast(sigma, x0)
        noisy = (1 - s) * target + s * noise
        velocity = self.layout.forward(model, noisy, (sigma * 1000).to(x0.device), batch.text, batch.history,
                                       batch.anchor)
        prediction = noisy - s * velocity.float()
        return self.config.distill.regression_weight * F.mse_loss(prediction, target)

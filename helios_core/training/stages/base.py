"""Stage 1 (Helios-Base): flow matching on the noisy chunk at full resolution.

    sigma ~ logit-normal(0, 1) (or uniform)      x_t = (1 - sigma) x0 + sigma eps      timestep = 1000 sigma
    loss = mean((v_pred - (eps - x0))^2)

The history and anchor arrive already laid out and corrupted (`history_aug`); the model sees them at timestep 0
(`zero_history_timestep`) exactly as at inference. Each sample's sigma and noise come from its own generator
(`step_random`), so they do not depend on how the global batch is split across processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from helios_core.training.config import TrainConfig
from helios_core.training.dataset import TrainingBatch
from helios_core.training.stages.common import HistoryLayout, broadcast, sample_noise, sample_unit
from helios_core.training.step_random import Random, sample_generators


class BaseStage:
    def __init__(self, config: TrainConfig, layout: HistoryLayout) -> None:
        self.config = config
        self.layout = layout

    def loss(self, model: torch.nn.Module, batch: TrainingBatch, random: Random) -> torch.Tensor:
        x0 = batch.target
        generators = sample_generators(random, x0.shape[0])
        sigma = sample_unit(self.config.timestep, generators)
        noise = sample_noise(x0.shape, generators, x0.device)
        s = broadcast(sigma, x0)
        noisy = (1 - s) * x0 + s * noise
        timestep = (sigma * 1000).to(x0.device)
        velocity = self.layout.forward(model, noisy, timestep, batch.text, batch.history, batch.anchor)
        return F.mse_loss(velocity.float(), (noise - x0).float())

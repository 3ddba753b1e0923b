"""The DMD arithmetic as pure functions: re-noising timesteps, the distribution-matching gradient and the two losses.

    timestep:  u in [0, 1) -> t = min + u (max - min) -> shifted t' = 1000 s u' / (1 + (s - 1) u'), u' = t / 1000
               -> clamped to [min, max]          (the generator's u ~ Beta(a, b) annealed to uniform; the critic's
                                                  u ~ uniform; shift s = `dmd_timestep_shift`)
    gradient:  g = (x0_fake - x0_real) / mean|x - x0_real|       (DMD eq. 7-8, the mean per sample)
    generator: 0.5 * mean((x - stopgrad(x - g))^2)               d/dx = g / numel: the DMD gradient, as a loss
    critic:    mean((v_critic(x_t) - (eps - x))^2)               flow matching on the generator's (detached) samples

Sigma is t / 1000 on the straight flow-matching line x_t = (1 - sigma) x + sigma eps, as in the base stage.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from helios_core.training.config import DistillConfig


def annealed_beta(settings: DistillConfig, step: int) -> tuple[float, float]:
    """Beta(a, b) moved linearly to Beta(1, 1) (uniform) over `generator_beta_anneal_steps` generator steps."""
    a, b = settings.generator_timestep_beta
    steps = settings.generator_beta_anneal_steps
    progress = 1.0 if steps == 0 else min(1.0, step / steps)
    return a + (1.0 - a) * progress, b + (1.0 - b) * progress


def unit_draws(batch: int, generator: torch.Generator, beta: tuple[float, float] | None) -> torch.Tensor:
    """(B,) float32 in [0, 1): uniform, or Beta(a, b).

    torch's Beta sampler takes no generator, so the Beta draw goes through numpy seeded from the run's torch
    generator: still a pure function of that generator's state, which is what exact resume needs.
    """
    if beta is None or beta == (1.0, 1.0):
        return torch.rand(batch, generator=generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.from_numpy(np.random.default_rng(seed).beta(beta[0], beta[1], size=batch)).float()


def renoise_timesteps(unit: torch.Tensor, settings: DistillConfig) -> torch.Tensor:
    low, high = settings.dmd_min_timestep, settings.dmd_max_timestep
    shift = settings.dmd_timestep_shift
    u = (low + unit * (high - low)) / 1000.0
    shifted = shift * u / (1.0 + (shift - 1.0) * u) * 1000.0
    return shifted.clamp(low, high)


def dmd_gradient(x: torch.Tensor, fake_x0: torch.Tensor, real_x0: torch.Tensor) -> torch.Tensor:
    """The DMD gradient direction, normalised per sample by the real score's mean absolute x0 error."""
    dims = list(range(1, x.ndim))
    normaliser = (x - real_x0).abs().mean(dim=dims, keepdim=True)
    return torch.nan_to_num((fake_x0 - real_x0) / normaliser)


def generator_loss(x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Float64 as the reference: x - g can be close to x and the squared difference tiny."""
    x64 = x.double()
    return 0.5 * F.mse_loss(x64, (x64 - gradient.double()).detach())


def critic_loss(velocity: torch.Tensor, noise: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(velocity.float(), (noise - clean).float())

"""The Helios paper's latent drift rule ("adaptive sampling") and its remedy, history noise.

Rule (official `AdaptiveAntiDrifting`): per chunk, per-channel mean and variance of the generated latents
(B, C, T, h, w) over (T, h, w); EMAs of both with rho 0.9, initialised on the first chunk; the chunk is flagged
when BOTH the L2 distance (over channels, averaged over the batch) of the mean to its EMA exceeds 0.15 AND that
of the variance exceeds 0.15. As in the official code the EMA absorbs the current chunk BEFORE the comparison,
so the measured distance is rho times the distance to the previous EMA; we keep that order because the 0.15
thresholds were chosen with it.

Remedy: `add_history_noise` adds sigma * eps to the just-generated latents before they enter the history.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LatentDriftMeasure:
    """Distances of one chunk's latent statistics to their EMAs, and whether the paper's rule fired."""

    mean_distance: float
    var_distance: float
    flagged: bool


class LatentDriftRule:
    """Stateful paper rule; `observe(latents)` once per chunk, in generation order."""

    def __init__(
        self, rho_mean: float = 0.9, rho_var: float = 0.9, mean_threshold: float = 0.15, var_threshold: float = 0.15
    ) -> None:
        self.rho_mean = rho_mean
        self.rho_var = rho_var
        self.mean_threshold = mean_threshold
        self.var_threshold = var_threshold
        self.ema_mean: torch.Tensor | None = None
        self.ema_var: torch.Tensor | None = None

    def observe(self, latents: torch.Tensor) -> LatentDriftMeasure:
        if latents.ndim != 5:
            raise ValueError(f"expected latents shaped (B, C, T, h, w), got {tuple(latents.shape)}")
        # float32 statistics on the latents' own device; only 2*B*C numbers cross to the CPU.
        values = latents.detach().float()
        mean = values.mean(dim=(2, 3, 4))
        var = values.var(dim=(2, 3, 4))
        if self.ema_mean is None or self.ema_mean.shape != mean.shape:
            self.ema_mean, self.ema_var = mean.clone(), var.clone()
            return LatentDriftMeasure(0.0, 0.0, False)
        ema_mean = self.ema_mean.to(mean.device)
        ema_var = self.ema_var.to(var.device)
        self.ema_mean = self.rho_mean * ema_mean + (1.0 - self.rho_mean) * mean
        self.ema_var = self.rho_var * ema_var + (1.0 - self.rho_var) * var
        mean_distance = float(torch.linalg.vector_norm(mean - self.ema_mean, dim=-1).mean())
        var_distance = float(torch.linalg.vector_norm(var - self.ema_var, dim=-1).mean())
        flagged = mean_distance > self.mean_threshold and var_distance > self.var_threshold
        return LatentDriftMeasure(mean_distance, var_distance, flagged)


def add_history_noise(
    latents: torch.Tensor, strength: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Return `latents + strength * eps`, eps ~ N(0, I), in the latents' dtype and device (input untouched).

    Additive, not sigma*eps + (1 - sigma)*x: the official test-time remedy (`apply_frame_aware_corruption`) is
    additive, and it is what the paper's strength 0.1 was tuned with. The interpolating form is the TRAINING
    corruption; at sigma 0.1 it would also shrink the content by 10%, itself a contrast drift.
    Noise is drawn in float32 on the generator's device (a CPU generator cannot fill a CUDA tensor), then moved.
    """
    if strength < 0:
        raise ValueError(f"history noise strength must be >= 0, got {strength}")
    if strength == 0:
        return latents.clone()
    device = generator.device if generator is not None else latents.device
    noise = torch.randn(latents.shape, generator=generator, device=device, dtype=torch.float32)
    noisy = latents.float() + strength * noise.to(latents.device)
    return noisy.to(latents.dtype)

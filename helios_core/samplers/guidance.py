"""Classifier-free guidance and CFG-Zero*, as pure functions of the two velocity predictions."""

from __future__ import annotations

import torch


def cfg_zero_star_scale(cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
    """s* = <v_c, v_u> / |v_u|^2 per sample (CFG-Zero*), shaped to broadcast over the prediction."""
    batch = cond.shape[0]
    cond_flat, uncond_flat = cond.reshape(batch, -1).float(), uncond.reshape(batch, -1).float()
    dot = (cond_flat * uncond_flat).sum(dim=1, keepdim=True)
    squared_norm = (uncond_flat**2).sum(dim=1, keepdim=True) + 1e-8
    return (dot / squared_norm).view(batch, *([1] * (cond.ndim - 1))).to(cond.dtype)


def guide(
    cond: torch.Tensor,
    uncond: torch.Tensor,
    scale: float,
    *,
    cfg_zero_star: bool,
    zero_out: bool,
) -> torch.Tensor:
    """Combine conditional and unconditional velocities.

    Plain CFG: v_u + w (v_c - v_u). CFG-Zero*: the unconditional branch is first rescaled by s*, which keeps early
    steps from overshooting, and `zero_out` (zero-init) replaces the first steps' velocity by zero.
    """
    if not cfg_zero_star:
        return uncond + scale * (cond - uncond)
    if zero_out:
        return cond * 0.0
    alpha = cfg_zero_star_scale(cond, uncond)
    return uncond * alpha + scale * (cond - uncond * alpha)

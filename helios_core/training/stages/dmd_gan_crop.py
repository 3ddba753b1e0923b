"""The random spatial crop of the GAN heads' inputs (the reference's "inputs randomly spatially cropped to 50%").

Before the heads, each sample's noisy-chunk tokens, laid out on their (T, h, w) patch grid, are cut to a window of
`fraction` of the height and of the width (all frames kept) at a random position. The windows are drawn per call from
the stage's seeded generator (so a resumed run draws the same ones), one per sample, and shared by every head of that
forward: the heads look at one region of the clip at several depths, as if the input itself had been cropped. The
approximate R1 passes the real forward's windows to its perturbed forward, so the finite difference compares the same
region; other calls draw fresh ones (real and fake of a pair need not share a window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def crop_size(length: int, fraction: float) -> int:
    """`fraction` of `length` tokens, rounded half up, at least 1: 4 -> 2, 5 -> 3, 1 -> 1 at 0.5."""
    return min(length, max(1, math.floor(length * fraction + 0.5)))


@dataclass(frozen=True)
class CropWindows:
    size: tuple[int, int]  # (rows, columns) of every window
    offsets: torch.Tensor  # (B, 2) int64 top-left corners (row, column) on the patch grid


def draw_windows(grid: tuple[int, int, int], batch: int, fraction: float,
                 generator: torch.Generator) -> CropWindows | None:
    """Random windows for `batch` samples, or None (the identity) when the crop keeps the whole grid: then nothing is
    drawn, so crop_fraction = 1 leaves the run's random stream as it was without a crop."""
    _, height, width = grid
    rows, cols = crop_size(height, fraction), crop_size(width, fraction)
    if (rows, cols) == (height, width):
        return None
    top = torch.randint(0, height - rows + 1, (batch,), generator=generator)
    left = torch.randint(0, width - cols + 1, (batch,), generator=generator)
    return CropWindows((rows, cols), torch.stack([top, left], dim=1))


def crop_tokens(tokens: torch.Tensor, grid: tuple[int, int, int],
                windows: CropWindows | None) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """(B, T*h*w, dim) row-major tokens -> (B, T*rows*cols, dim) of each sample's window, and the cropped grid."""
    if windows is None:
        return tokens, grid
    frames, height, width = grid
    rows, cols = windows.size
    on_grid = tokens.reshape(tokens.shape[0], frames, height, width, tokens.shape[-1])
    crops = [on_grid[b, :, top:top + rows, left:left + cols]  # plain slices: the gradient reaches only the window
             for b, (top, left) in enumerate(windows.offsets.tolist())]
    return torch.stack(crops).reshape(tokens.shape[0], frames * rows * cols, -1), (frames, rows, cols)

"""Sequence (context) parallelism for one video: diffusers' Ulysses attention on the Helios transformer.

Every rank holds the whole model and runs the same streaming loop on the same inputs (noise comes from a CPU
generator seeded by the request, so all ranks draw the same numbers). Inside each transformer block diffusers'
hooks split the token sequence across the ranks for self-attention, cross-attention and the feed-forward network,
and all-gather the results afterwards; Ulysses all-to-alls swap the sequence split for a head split around the
attention kernel, so each rank attends over the full sequence for its share of heads. The arithmetic per token is
unchanged, so the output equals the one-GPU output up to floating-point reordering.

Why not `HeliosTransformer3DModel._cp_plan` as it ships (diffusers 0.42.1): it names the gather points of blocks 0-39
literally, so any model with another depth (the tiny test models) fails to enable. `helios_cp_plan` builds the same
plan for the model's real depth.

Checked before enabling (each a ConfigError naming the fix):
- `is_amplify_history` models are refused: their attention processor derives the history length from the LOCAL
  sequence shard, which is wrong under a split (the released Helios checkpoints have it off);
- the split must be even unless Ulysses-Anything is used: `needs_uneven_split` says when (heads or token counts
  not divisible by the degree); the even path is preferred because Ulysses-Anything all-gathers shard sizes with a
  host sync at every attention call.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from diffusers import ContextParallelConfig
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

from helios_core.config import GenerationConfig
from helios_core.errors import ConfigError


def helios_cp_plan(num_layers: int) -> dict:
    """diffusers' Helios plan for `num_layers` blocks: split before attn1/attn2/ffn, gather after each."""
    split = ContextParallelInput(split_dim=1, expected_dims=3, split_output=False)
    plan: dict = {
        "blocks.*.attn1": {"hidden_states": split, "rotary_emb": split},
        "blocks.*.attn2": {"hidden_states": split},
        "blocks.*.ffn": {"hidden_states": split},
    }
    for part in ("attn1", "attn2", "ffn"):
        plan.update({f"blocks.{i}.{part}": ContextParallelOutput(gather_dim=1, expected_dims=3)
                     for i in range(num_layers)})
    return plan


def sequence_lengths(config: GenerationConfig, latent_height: int, latent_width: int,
                     patch_size: tuple[int, int, int]) -> tuple[int, ...]:
    """Every token count a split sees: per pyramid stage, the chunk's noisy tokens (cross-attention) and noisy plus
    history tokens (self-attention, feed-forward).

    Mirrors the transformer's patchifiers: the noisy latents are halved per remaining pyramid stage (as
    `downsample_noise` does); short history uses the chunk's patch, mid 2x and long 4x patches, each after
    replicate-padding up to a whole patch (hence the ceilings). History is always at full latent resolution."""
    history = config.history
    long, mid, short = history.sizes
    # The short term always sees one frame more: the anchor when it is kept, else an extra history frame
    # (see HistoryBuffer).
    short += 1
    pt, ph, pw = patch_size

    def tokens(frames: int, height: int, width: int, scale: int) -> int:
        return (math.ceil(frames / (pt * scale)) * math.ceil(height / (ph * scale))
                * math.ceil(width / (pw * scale)))

    history_tokens = sum(tokens(frames, latent_height, latent_width, scale)
                         for frames, scale in ((short, 1), (mid, 2), (long, 4)))
    lengths: list[int] = []
    stages = config.sampler.num_stages
    for stage in range(stages):
        halvings = stages - 1 - stage
        noisy = tokens(history.latent_frames_per_chunk, latent_height >> halvings, latent_width >> halvings, 1)
        lengths += [noisy, noisy + history_tokens]
    return tuple(lengths)


def needs_uneven_split(num_heads: int, lengths: tuple[int, ...], degree: int) -> bool:
    """True when heads or a token count do not divide by `degree` (Ulysses-Anything then handles the remainder)."""
    return num_heads % degree != 0 or any(length % degree for length in lengths)


def enable_context_parallel(transformer: torch.nn.Module, degree: int, *, uneven: bool) -> ContextParallelConfig:
    """Turn on Ulysses context parallelism of `degree` ranks on `transformer` (call once, on every rank).

    The default process group must already hold `degree` ranks (see `world.join_world`)."""
    config = transformer.config
    if getattr(config, "is_amplify_history", False):
        raise ConfigError("--gpus > 1 cannot split this model: it amplifies history keys (is_amplify_history), "
                          "which diffusers' context parallelism computes per shard; run it with --gpus 1")
    if degree < 2:
        raise ConfigError(f"context parallelism needs at least 2 GPUs, got --gpus {degree}")
    cp_config = ContextParallelConfig(ulysses_degree=degree, ulysses_anything=uneven)
    device = next(transformer.parameters()).device
    with _cpu_accelerator_count(device):
        transformer.enable_parallelism(config=cp_config, cp_plan=helios_cp_plan(int(config.num_layers)))
    return cp_config


@contextlib.contextmanager
def _cpu_accelerator_count(device: torch.device) -> Iterator[None]:
    """On a CPU-only torch, diffusers 0.42.1 picks the rank's device as `rank % torch.accelerator.device_count()`,
    which divides by zero. The answer is not used for CPU tensors, so report one "device" while enabling; this is
    what lets the gloo tests run the real context-parallel code. No effect on GPUs."""
    if device.type != "cpu" or torch.accelerator.device_count() > 0:
        yield
        return
    original = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.accelerator.device_count = original  # type: ignore[assignment]

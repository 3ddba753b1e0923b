"""FLOP count of one HeliosTransformer3DModel forward, from its config and the shapes of its inputs.

Counted (one multiply-add = 2 FLOPs), following diffusers' `transformer_helios.py` layer by layer:
- every linear layer as 2 * tokens * in * out, with the tokens that layer actually sees:
  self-attention q/k/v/out and the FFN run over all tokens (noisy + history); with `guidance_cross_attn` (the
  released config) cross-attention q/out run over the noisy tokens only, and its k/v over the text tokens;
- the patch embeddings (Conv3d with stride = kernel, i.e. a linear map per patch), the text projection
  (text_dim -> dim -> dim over the text tokens), the time embedding and proj_out;
- attention as 4 * q_tokens * kv_tokens * dim (QK^T and PV, all heads): self-attention over all tokens, cross-
  attention from the noisy tokens to the text tokens.
Not counted: norms, RoPE, modulation, residual adds and softmax (elementwise work, no matrix units).

History tokens follow the multi-term memory patches: short = patch_size, mid = 2 * patch_size, long =
4 * patch_size, each input padded up to a multiple of its kernel (`pad_for_3d_conv`). At 384x640 that is
1920 + 240 + 240 = 2,400 history tokens and 540 / 2,160 / 8,640 noisy tokens per pyramid stage; the 14B model
then costs 0.0697 / 0.1190 / 0.3595 PFLOP per forward, 0.548 PFLOP per [1, 1, 1] chunk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

H100_DENSE_BF16_TFLOPS = 989.0  # NVIDIA's H100 SXM dense bf16 figure, the utilisation denominator


@dataclass(frozen=True)
class ForwardTokens:
    noisy: int
    short: int = 0
    mid: int = 0
    long: int = 0
    text: int = 512

    @property
    def history(self) -> int:
        return self.short + self.mid + self.long

    @property
    def total(self) -> int:
        return self.noisy + self.history


@dataclass(frozen=True)
class ForwardFlops:
    embeddings: float  # patch embeddings, text projection, time embedding, proj_out
    linear: float  # the blocks' linear layers
    self_attention: float
    cross_attention: float

    @property
    def total(self) -> float:
        return self.embeddings + self.linear + self.self_attention + self.cross_attention

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "total": self.total}


def patch_tokens(shape: Sequence[int], kernel: Sequence[int]) -> int:
    """Tokens a stride = kernel Conv3d makes of a (B, C, T, H, W) input padded up to multiples of the kernel."""
    _, _, *sizes = shape
    return math.prod(math.ceil(size / k) for size, k in zip(sizes, kernel, strict=True))


def forward_tokens(config: Mapping, hidden_shape: Sequence[int], short_shape: Sequence[int] | None = None,
                   mid_shape: Sequence[int] | None = None, long_shape: Sequence[int] | None = None,
                   text_tokens: int = 512) -> ForwardTokens:
    """Token counts of one forward from its input shapes (batch 1); a missing history term contributes none."""
    patch = tuple(config["patch_size"])
    return ForwardTokens(
        noisy=patch_tokens(hidden_shape, patch),
        short=patch_tokens(short_shape, patch) if short_shape is not None else 0,
        mid=patch_tokens(mid_shape, tuple(2 * p for p in patch)) if mid_shape is not None else 0,
        long=patch_tokens(long_shape, tuple(4 * p for p in patch)) if long_shape is not None else 0,
        text=text_tokens,
    )


def forward_flops(config: Mapping, tokens: ForwardTokens) -> ForwardFlops:
    """FLOPs of one forward of a model with this config (see the module docstring for what is counted)."""
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    ffn, layers = config["ffn_dim"], config["num_layers"]
    channels, patch = config["in_channels"], math.prod(config["patch_size"])
    out_channels = config.get("out_channels") or channels
    all_tokens, noisy, text = tokens.total, tokens.noisy, tokens.text
    cross_queries = noisy if config.get("guidance_cross_attn", False) else all_tokens

    embeddings = 2 * dim * channels * patch * (noisy + tokens.short + 8 * tokens.mid + 64 * tokens.long)
    embeddings += 2 * text * (config["text_dim"] * dim + dim * dim)  # PixArt-style text projection
    # Time embedding (freq -> dim -> dim, then dim -> 6 dim), twice when the history gets its own t = 0 embedding.
    time_passes = 2 if config.get("zero_history_timestep", False) and tokens.history else 1
    embeddings += time_passes * 2 * (config["freq_dim"] * dim + dim * dim + dim * 6 * dim)
    embeddings += 2 * noisy * dim * out_channels * patch  # proj_out sees the noisy tokens only

    linear_per_layer = (
        2 * all_tokens * 4 * dim * dim  # self-attention q, k, v, out
        + 2 * cross_queries * 2 * dim * dim  # cross-attention q, out
        + 2 * text * 2 * dim * dim  # cross-attention k, v (text already projected to dim)
        + 2 * all_tokens * 2 * dim * ffn  # FFN up and down
    )
    self_attention = 4 * all_tokens * all_tokens * dim
    cross_attention = 4 * cross_queries * text * dim
    return ForwardFlops(
        embeddings=float(embeddings),
        linear=float(layers * linear_per_layer),
        self_attention=float(layers * self_attention),
        cross_attention=float(layers * cross_attention),
    )

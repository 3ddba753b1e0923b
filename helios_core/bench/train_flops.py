"""FLOPs of one training step: forward FLOPs from `speed_flops`, the LoRA adapters' own, and what backward adds.

Forward (`speed_flops.forward_flops`, one multiply-add = 2 FLOPs): the linear layers and the attention matmuls
(patch/text/time embeddings and proj_out included; norms, RoPE, softmax and elementwise work not counted).
LoRA adapters add 2 * tokens * rank * (in + out) per adapted linear layer, with the tokens that layer sees: all
tokens in self-attention and the FFN; with `guidance_cross_attn` the noisy tokens for cross-attention q/out and the
text tokens for its k/v (the same split `forward_flops` uses for the base layers).

Model FLOPs of a step (the usual MFU numerator: what the maths needs, recomputation excluded):
    full fine-tuning   3 x forward                         (forward, input gradients, weight gradients)
    LoRA               2 x base linears and embeddings     (forward and input gradients; frozen: no weight gradients)
                     + 3 x attention                        (forward, then dQ/dK and dP/dV: two matmuls each)
                     + 3 x adapters                         (they do get weight gradients)
Gradient checkpointing runs every block's forward a second time during backward: hardware FLOPs add one forward of
the blocks (base linears + attention + adapters; the embeddings sit outside the checkpointed blocks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

from helios_core.bench.speed_flops import ForwardFlops, ForwardTokens


@dataclass(frozen=True)
class AdaptedLayer:
    name: str
    in_features: int
    out_features: int
    rank: int


@dataclass(frozen=True)
class StepFlops:
    model: float  # MFU numerator
    hardware: float  # model + checkpoint recomputation

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def adapted_layers(model: torch.nn.Module, adapter: str = "default") -> list[AdaptedLayer]:
    """Every peft LoRA-wrapped linear layer of `model`, with its rank for `adapter`."""
    found = []
    for name, module in model.named_modules():
        ranks = getattr(module, "r", None)
        if hasattr(module, "lora_A") and isinstance(ranks, dict) and adapter in ranks:
            found.append(AdaptedLayer(name, int(module.in_features), int(module.out_features), int(ranks[adapter])))
    return found


def layer_tokens(layer_name: str, config: Mapping, tokens: ForwardTokens) -> int:
    """Tokens a block's linear layer sees in one forward (batch 1)."""
    if ".attn2." in layer_name:
        if layer_name.endswith(("attn2.to_k", "attn2.to_v")):
            return tokens.text
        return tokens.noisy if config.get("guidance_cross_attn", False) else tokens.total
    return tokens.total


def lora_forward_flops(layers: list[AdaptedLayer], config: Mapping, tokens: ForwardTokens) -> float:
    return float(sum(2 * layer_tokens(layer.name, config, tokens) * layer.rank * (layer.in_features
                                                                                  + layer.out_features)
                     for layer in layers))


def training_step_flops(forward: ForwardFlops, lora: float, *, lora_training: bool,
                        gradient_checkpointing: bool) -> StepFlops:
    attention = forward.self_attention + forward.cross_attention
    if lora_training:
        model = 2 * (forward.embeddings + forward.linear) + 3 * attention + 3 * lora
    else:
        model = 3 * forward.total
    recompute = forward.linear + attention + lora if gradient_checkpointing else 0.0
    return StepFlops(model=float(model), hardware=float(model + recompute))

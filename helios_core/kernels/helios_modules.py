"""Fused stand-ins for the parts of diffusers' HeliosTransformer3DModel that the kernels replace.

Each one computes what the diffusers 0.42 code computes, in the same order and dtypes, with three substitutions:
- `fused_block_forward` (HeliosTransformerBlock.forward): norm1 / norm3 + timestep modulation and the affine
  norm2 go through `modulated_layer_norm`;
- `FusedHeliosAttnProcessor` (HeliosAttnProcessor): the q/k RMSNorm goes through `rms_norm` and the 3-D RoPE
  through `rope_3d`; the projections (diffusers' private `_get_qkv_projections`, so fused QKV and LoRA layers work
  unchanged) and the attention dispatch are diffusers' own, the optional history-key gain is restated as written;
- `fused_output_norm_forward` (HeliosOutputNorm.forward): the final modulated norm.
Everything else (attention itself, the FFN, gates, residuals) is untouched. The submodules are still called as
modules (self.attn1(...), self.ffn(...)), so diffusers' context-parallel hooks on them keep working.

Each op gets `impl` from the module it runs in ("auto", "torch" or "triton", set by `switch.enable_fused_kernels`).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_helios import HeliosAttnProcessor, _get_qkv_projections

from helios_core.kernels.ops import modulated_layer_norm, rms_norm, rope_3d

IMPL_ATTR = "_helios_kernel_impl"  # set on each patched block / output norm


class FusedHeliosAttnProcessor(HeliosAttnProcessor):
    """HeliosAttnProcessor with fused q/k RMSNorm and RoPE. Keeps the stock processor it replaced (`original`) and
    carries its attention backend and context-parallel config, so swapping back loses neither."""

    def __init__(self, original: HeliosAttnProcessor, impl: str) -> None:
        super().__init__()
        self.original = original
        self.impl = impl
        self._attention_backend = getattr(original, "_attention_backend", None)
        self._parallel_config = getattr(original, "_parallel_config", None)

    def restore(self) -> HeliosAttnProcessor:
        """The stock processor, with whatever backend/parallel config was set while this one was active."""
        self.original._attention_backend = self._attention_backend
        self.original._parallel_config = self._parallel_config
        return self.original

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, rotary_emb: torch.Tensor | None = None,
                 original_context_length: int | None = None) -> torch.Tensor:
        query, key, value = _get_qkv_projections(attn, hidden_states, encoder_hidden_states)
        # RMSNorm across all heads (inner_dim wide), before the head split, as torch.nn.RMSNorm(inner_dim) does.
        query = rms_norm(query, attn.norm_q.weight, attn.norm_q.eps, self.impl)
        key = rms_norm(key, attn.norm_k.weight, attn.norm_k.eps, self.impl)
        query, key, value = (t.unflatten(2, (attn.heads, -1)) for t in (query, key, value))
        if rotary_emb is not None:
            query = rope_3d(query, rotary_emb, self.impl)
            key = rope_3d(key, rotary_emb, self.impl)
        if not attn.is_cross_attention and attn.is_amplify_history:
            key = _amplify_history_keys(attn, key, hidden_states.shape[1] - original_context_length)
        out = dispatch_attention_fn(
            query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False,
            backend=self._attention_backend,
            # Only self-attention is split across ranks (diffusers PR 12909): cross-attention keys are the text.
            parallel_config=self._parallel_config if encoder_hidden_states is None else None,
        )
        out = out.flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


def _amplify_history_keys(attn, key: torch.Tensor, history_len: int) -> torch.Tensor:
    """Helios' optional learned gain on the history tokens' keys, in (1, max_scale) (per head or one scalar)."""
    if history_len <= 0:
        return key
    gain = 1.0 + torch.sigmoid(attn.history_key_scale) * (attn.max_scale - 1.0)
    if attn.history_scale_mode == "per_head":
        gain = gain.view(1, 1, -1, 1)
    return torch.cat([key[:, :history_len] * gain, key[:, history_len:]], dim=1)


def _modulation(table: torch.Tensor, temb: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The block's six fp32 modulation terms (shift, scale, gate for attention, then for the FFN), each
    broadcastable to the tokens: (B, S, D) when temb is per token (B, S, 6, D), (B, 1, D) when per sample."""
    if temb.ndim == 4:
        return (table.unsqueeze(0) + temb.float()).unbind(2)
    return tuple(term.unsqueeze(1) for term in (table + temb.float()).unbind(1))


def _cross_attention_norm(norm: torch.nn.Module, x: torch.Tensor, impl: str) -> torch.Tensor:
    """norm2: an affine fp32 LayerNorm (cross_attn_norm=True, the released config) or Identity."""
    if isinstance(norm, torch.nn.LayerNorm) and norm.weight is not None and norm.bias is not None:
        return modulated_layer_norm(x, norm.weight, norm.bias, norm.eps, offset=0.0, impl=impl)
    return norm(x.float()).type_as(x)


def fused_block_forward(self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor, temb: torch.Tensor,
                        rotary_emb: torch.Tensor, original_context_length: int | None = None) -> torch.Tensor:
    """HeliosTransformerBlock.forward with fused modulated norms (bound to a block by enable_fused_kernels)."""
    impl = getattr(self, IMPL_ATTR)
    shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = _modulation(self.scale_shift_table, temb)

    # 1. Self-attention over history + current tokens, gated residual in fp32.
    normed = modulated_layer_norm(hidden_states, scale_sa, shift_sa, self.norm1.eps, 1.0, impl)
    attn_out = self.attn1(normed, None, None, rotary_emb, original_context_length)
    hidden_states = (hidden_states.float() + attn_out * gate_sa).type_as(hidden_states)

    # 2. Cross-attention to the text; with guidance_cross_attn only the current (non-history) tokens attend.
    history = None
    if self.guidance_cross_attn:
        history_len = hidden_states.shape[1] - original_context_length
        history, hidden_states = torch.split(hidden_states, [history_len, original_context_length], dim=1)
    normed = _cross_attention_norm(self.norm2, hidden_states, impl)
    hidden_states = hidden_states + self.attn2(normed, encoder_hidden_states, None, None, original_context_length)
    if history is not None:
        hidden_states = torch.cat([history, hidden_states], dim=1)

    # 3. Feed-forward, gated residual in fp32.
    normed = modulated_layer_norm(hidden_states, scale_ff, shift_ff, self.norm3.eps, 1.0, impl)
    ff_out = self.ffn(normed)
    return (hidden_states.float() + ff_out.float() * gate_ff).type_as(hidden_states)


def fused_output_norm_forward(self, hidden_states: torch.Tensor, temb: torch.Tensor,
                              original_context_length: int) -> torch.Tensor:
    """HeliosOutputNorm.forward: the modulated norm of the current tokens only (history tokens are dropped)."""
    temb = temb[:, -original_context_length:, :]
    shift, scale = (self.scale_shift_table.unsqueeze(0).to(temb.device) + temb.unsqueeze(2)).unbind(2)
    hidden_states = hidden_states[:, -original_context_length:, :]
    return modulated_layer_norm(hidden_states, scale.to(hidden_states.device), shift.to(hidden_states.device),
                                self.norm.eps, 1.0, getattr(self, IMPL_ATTR))

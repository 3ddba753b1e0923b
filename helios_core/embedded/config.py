"""The embedded default model's shapes: VAE, word tokenizer, text encoder, and the transformer.

Choices, and why (the trained result and its numbers: helios_core/default_model/MODEL_CARD.md):
- VAE: a Wan VAE with Wan 2.2's pixel shuffle (`patch_size=2`: 2x2 pixels -> 12 channels) and two spatial
  halvings, so 8x spatial and 4x temporal compression as the engine expects (`scale_factor_spatial=8`), but the
  decoder's largest activations are at HALF the output resolution: on a 2-core CPU the decode of a 33-frame chunk
  is dominated by its full-resolution passes (per-frame op count, memory traffic), and this cuts them ~3x against
  the plain 4-stage layout at the same width. The encoder is twice as wide as the decoder (`decoder_base_dim`):
  its cost matters only in training and for video inputs, while the decoder runs for every generated chunk.
  Wan 2.2's residual blocks (`is_residual`): their parameter-free shortcuts are what makes it trainable quickly.
- Tokenizer: a word-level tokenizer over the world's VOCABULARY (helios_core.model.tokenizer).
- Text encoder: a 2-layer UMT5 encoder of width 128; its width is the transformer's `text_dim`.
- Transformer: 4 layers, 4 heads x 64 (width 256), every Helios feature on like the released model. Four, not six:
  on a 2-core CPU the 60-second video must finish in under a minute with start-up (about 10 s of imports), and six
  layers put the denoiser alone near real time at 128x256.

Storage (see `folder_bytes_estimate`): transformer in bf16 except its `_keep_in_fp32_modules` (fp32), VAE and text
encoder in fp32. The whole folder is then about 20 MB, under the 40 MB package budget.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLWan, HeliosTransformer3DModel
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from helios_core.model.tiny import tiny_transformer_config
from helios_core.model.tokenizer import build_word_tokenizer
from helios_core.world.vocabulary import VOCABULARY

# The size the embedded model is trained and benchmarked at: the three-stage pyramid needs multiples of 64.
EMBEDDED_HEIGHT, EMBEDDED_WIDTH = 128, 256
TEXT_ENCODER_SEED = 0
PACKAGE_BUDGET_BYTES = 40 * 1024 * 1024


def embedded_vae_config() -> dict:
    """AutoencoderKLWan kwargs: z_dim 16, 4x temporal, 8x spatial (pixel shuffle 2 x two halvings), CPU-lean decoder.

    `latents_mean` / `latents_std` are placeholders here (0 / 1): train_vae measures them on world clips and
    writes the measured values into the saved folder's config.
    """
    return {
        "base_dim": 32,  # encoder width
        "decoder_base_dim": 16,  # decoder width at its largest resolution (half the output size, see patch_size)
        "z_dim": 16,
        # Three stages, two spatial halvings; the residual layout needs the last stage to keep its width.
        "dim_mult": [1, 2, 2],
        "num_res_blocks": 1,
        "attn_scales": [],
        "temperal_downsample": [True, True],  # both halvings also halve time: 4x temporal
        "dropout": 0.0,
        # Wan 2.2's parameter-free space-to-channel shortcuts around every down/up block. Without them, training
        # from scratch barely moves colour through the latent (L1 0.45 after 200 steps on world crops, vs 0.19 with).
        "is_residual": True,
        "patch_size": 2,  # 2x2 pixel shuffle in front of the encoder and after the decoder
        "in_channels": 12,  # 3 colours x 2 x 2
        "out_channels": 12,
        "scale_factor_temporal": 4,
        "scale_factor_spatial": 8,  # 2 (patch) x 2 x 2
        "latents_mean": [0.0] * 16,
        "latents_std": [1.0] * 16,
    }


def embedded_tokenizer() -> PreTrainedTokenizerFast:
    """The word-level tokenizer over the world's vocabulary (the same words always give the same ids)."""
    return build_word_tokenizer(sorted(VOCABULARY))


def embedded_text_encoder_config(vocab_size: int) -> dict:
    """UMT5Config kwargs: a 2-layer encoder, width 128 (= the transformer's text_dim), 4 heads of 32."""
    return {
        "vocab_size": vocab_size,
        "d_model": 128,
        "d_kv": 32,
        "d_ff": 256,
        "num_layers": 2,
        "num_heads": 4,
        # Captions are at most ~40 tokens: 16 buckets up to distance 64 cover them.
        "relative_attention_num_buckets": 16,
        "relative_attention_max_distance": 64,
        "feed_forward_proj": "gated-gelu",
        "dropout_rate": 0.0,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }


def build_embedded_text_encoder(vocab_size: int, seed: int = TEXT_ENCODER_SEED) -> UMT5EncoderModel:
    """The frozen text encoder: random UMT5 weights fully determined by `seed` (the transformer learns to read it).

    Built under fork_rng so the caller's global RNG stream is not moved.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = UMT5EncoderModel(UMT5Config(**embedded_text_encoder_config(vocab_size)))
    return encoder.eval()


def embedded_transformer_config() -> dict:
    """HeliosTransformer3DModel kwargs: 4 layers, 4 heads x 64, text_dim 128, rope dims summing to 64."""
    return tiny_transformer_config(
        num_attention_heads=4,
        attention_head_dim=64,
        text_dim=embedded_text_encoder_config(1)["d_model"],
        ffn_dim=1024,
        num_layers=4,
        # Each axis needs an even width (cos/sin pairs); the released (44, 42, 42) halved, rounded to even.
        rope_dim=(24, 20, 20),  # time, height, width
    )


def folder_bytes_estimate(vocab_size: int) -> dict[str, int]:
    """Weight bytes per component as the folder stores them (built on the meta device: no memory, no RNG use)."""
    with torch.device("meta"):
        transformer = HeliosTransformer3DModel.from_config(embedded_transformer_config())
        vae = AutoencoderKLWan.from_config(embedded_vae_config())
        text_encoder = UMT5EncoderModel(UMT5Config(**embedded_text_encoder_config(vocab_size)))
    keep_fp32 = transformer._keep_in_fp32_modules or []
    transformer_bytes = 0
    for name, tensor in transformer.state_dict().items():
        # The loader's rule: a module name anywhere in the dotted key keeps that tensor fp32.
        transformer_bytes += tensor.numel() * (4 if any(m in name.split(".") for m in keep_fp32) else 2)
    sizes = {
        "transformer": transformer_bytes,
        "vae": sum(t.numel() * 4 for t in vae.state_dict().values()),
        # shared/tied embeddings are stored once
        "text_encoder": sum(p.numel() * 4 for p in text_encoder.parameters()),
    }
    sizes["total"] = sum(sizes.values())
    return sizes

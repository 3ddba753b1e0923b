"""Configs for tiny random Helios models (tests, CPU smoke runs) and the real 14B transformer config (GPU bench).

A tiny model has the real architecture and every Helios feature switched on (multi-term memory patches, guidance
cross-attention, zero-history timestep) at toy widths, so the whole load -> generate -> save path runs on a laptop
CPU in seconds. Its weights are random but fully determined by the seed; building one never touches the global
torch RNG state of the caller.

Scheduler configs: "unipc" is Helios-Base's (HeliosScheduler, one stage), "unipc3" Helios-Mid's (HeliosScheduler,
three pyramid stages) and "dmd" Helios-Distilled's (HeliosDMDScheduler, three stages, linear dynamic shift).
Each is the scheduler class's own full config (`to_json_string`), `_class_name` included, so it round-trips
through `scheduler_config.json` unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, HeliosDMDScheduler, HeliosScheduler, HeliosTransformer3DModel
from transformers import UMT5Config, UMT5EncoderModel

from helios_core.config import GenerationConfig
from helios_core.errors import ConfigError
from helios_core.model.folder import ModelParts, save_model_folder
from helios_core.model.tokenizer import build_word_tokenizer

SCHEDULER_KINDS = ("unipc", "unipc3", "dmd")

# Enough words for test prompts; the embedded default model passes its own world vocabulary instead.
TINY_WORDS = (
    "a an the of in on at with and to from over under near by is are walks runs flies swims sits stands moves "
    "red green blue yellow white black orange purple gray brown bright dark small big tall tiny "
    "cat dog bird fish tree house car road river sky sun moon cloud grass flower mountain sea boat city street "
    "man woman child camera slowly fast left right up down forward day night rain snow light shadow"
).split()

_PYRAMID_STAGE_RANGE = [0, 1 / 3, 2 / 3, 1]
# UniPC (bh2, order 2) with the exponential per-chunk shift the reference validation uses.
_UNIPC = {"scheduler_type": "unipc", "use_dynamic_shifting": True, "time_shift_type": "exponential"}


def tiny_transformer_config(**overrides: object) -> dict:
    """2 layers, 2 heads x 32 (inner dim 64), every Helios feature on, like the real config at toy width."""
    config = {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 32,
        "in_channels": 16,
        "out_channels": 16,
        "text_dim": 32,
        "freq_dim": 256,
        "ffn_dim": 128,
        "num_layers": 2,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "added_kv_proj_dim": None,
        "rope_dim": (12, 10, 10),  # sums to attention_head_dim, as (44, 42, 42) sums to 128
        "rope_theta": 10000.0,
        "guidance_cross_attn": True,
        "zero_history_timestep": True,
        "has_multi_term_memory_patch": True,
        "is_amplify_history": False,
        "history_scale_mode": "per_head",
    }
    unknown = set(overrides) - set(config)
    if unknown:
        raise ConfigError(f"tiny transformer config: unknown key(s) {sorted(unknown)}; known: {sorted(config)}")
    config.update(overrides)
    return config


def full_transformer_config() -> dict:
    """The released 14B Helios transformer (Base, Mid and Distilled share it): 40 layers, 40 heads x 128."""
    return tiny_transformer_config(
        num_attention_heads=40,
        attention_head_dim=128,
        text_dim=4096,
        ffn_dim=13824,
        num_layers=40,
        rope_dim=(44, 42, 42),
    )


def tiny_vae_config() -> dict:
    """A Wan VAE at base width 8: 16 latent channels, 4x temporal and 8x spatial compression like the real one."""
    return {
        "base_dim": 8,
        "z_dim": 16,
        "dim_mult": [1, 2, 2, 2],
        "num_res_blocks": 1,
        "attn_scales": [],
        # Three spatial halvings (8x); time is halved at the 2nd and 3rd (4x), as in Wan 2.1.
        "temperal_downsample": [False, True, True],
    }


def tiny_text_encoder_config(vocab_size: int) -> dict:
    """A 2-layer UMT5 encoder whose width (32) is the tiny transformer's text_dim."""
    return {
        "vocab_size": vocab_size,
        "d_model": 32,
        "d_kv": 8,
        "d_ff": 64,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 16,
        "feed_forward_proj": "gated-gelu",
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }


def scheduler_config_for(kind: str) -> dict:
    """The full scheduler config of one sampler kind: "unipc" (Base), "unipc3" (Mid) or "dmd" (Distilled)."""
    # Each kind is a dict of non-default keys; the class fills in the rest (its to_json_string writes them all).
    if kind == "unipc":
        scheduler = HeliosScheduler(**_UNIPC, stages=1, stage_range=[0, 1])
    elif kind == "unipc3":
        scheduler = HeliosScheduler(**_UNIPC, stages=3, stage_range=_PYRAMID_STAGE_RANGE, gamma=1 / 3)
    elif kind == "dmd":
        scheduler = HeliosDMDScheduler(
            stages=3,
            stage_range=_PYRAMID_STAGE_RANGE,
            gamma=1 / 3,
            shift=1.0,
            use_dynamic_shifting=True,
            time_shift_type="linear",
        )
    else:
        raise ConfigError(f"scheduler kind {kind!r} is unknown; choose one of {', '.join(SCHEDULER_KINDS)}")
    return json.loads(scheduler.to_json_string())


def build_tiny_model_parts(seed: int = 0, *, words: Iterable[str] | None = None, scheduler: str = "dmd") -> ModelParts:
    """A complete tiny model in fp32 with random weights that depend only on `seed` (and `words`)."""
    scheduler_config = scheduler_config_for(scheduler)
    tokenizer = build_word_tokenizer(TINY_WORDS if words is None else words)
    # fork_rng: seeding must not change the random stream of whoever called us (devices=[]: CPU RNG only).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = HeliosTransformer3DModel.from_config(tiny_transformer_config())
        vae = AutoencoderKLWan.from_config(tiny_vae_config())
        text_encoder = UMT5EncoderModel(UMT5Config(**tiny_text_encoder_config(len(tokenizer))))
    return ModelParts(
        transformer=transformer.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler_config=scheduler_config,
    )


def write_tiny_model_folder(
    path: Path, seed: int = 0, scheduler: str = "dmd", *, max_shard_size: str = "5GB"
) -> Path:
    """Write a tiny model folder at `path` (a test fixture helper) and return the path."""
    save_model_folder(build_tiny_model_parts(seed, scheduler=scheduler), Path(path), max_shard_size=max_shard_size)
    return Path(path)


def tiny_generation_config(**values: object) -> GenerationConfig:
    """64x64, 40 frames (two chunks: 33 + 7), 16 text tokens: the smallest shape the three-stage pyramid allows."""
    base = {"video.height": 64, "video.width": 64, "video.num_frames": 40, "prompt.max_sequence_length": 16}
    return GenerationConfig().with_values({**base, **values})

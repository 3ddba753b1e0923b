"""Tiny model configs, deterministic tiny builds, scheduler configs and the word-level tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKLWan, HeliosDMDScheduler, HeliosScheduler, HeliosTransformer3DModel
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from helios_core.errors import ConfigError
from helios_core.model.folder import validate_model_folder
from helios_core.model.tiny import (
    build_tiny_model_parts,
    full_transformer_config,
    scheduler_config_for,
    tiny_transformer_config,
    tiny_vae_config,
    write_tiny_model_folder,
)
from helios_core.model.tokenizer import build_word_tokenizer


def _all_tensors(seed: int) -> dict[str, torch.Tensor]:
    parts = build_tiny_model_parts(seed)
    return {
        f"{name}.{key}": tensor
        for name in ("transformer", "vae", "text_encoder")
        for key, tensor in getattr(parts, name).state_dict().items()
    }


def test_tiny_builds_are_deterministic_from_the_seed_and_leave_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    first, again, other = _all_tensors(0), _all_tensors(0), _all_tensors(1)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[key], again[key]) for key in first)
    random_weights = [key for key in first if first[key].numel() > 1 and first[key].std() > 0]
    assert random_weights and all(not torch.equal(first[key], other[key]) for key in random_weights)


def test_tiny_parts_fit_together_and_run() -> None:
    parts = build_tiny_model_parts(words=["a red cat", "in the snow"], scheduler="unipc3")
    transformer_config = parts.transformer.config
    assert transformer_config.num_attention_heads * transformer_config.attention_head_dim == 64
    assert sum(transformer_config.rope_dim) == transformer_config.attention_head_dim
    assert parts.text_encoder.config.d_model == transformer_config.text_dim
    assert parts.text_encoder.config.vocab_size == len(parts.tokenizer)
    assert all(p.dtype == torch.float32 for p in parts.transformer.parameters())
    tokens = parts.tokenizer(["a red cat"], padding="max_length", max_length=8, return_tensors="pt")
    with torch.no_grad():
        text = parts.text_encoder(tokens.input_ids, tokens.attention_mask).last_hidden_state  # (1, 8, 32)
        # 9 pixel frames at 32x32 -> 3 latent frames at 4x4: 4x temporal (plus the first frame), 8x spatial.
        latents = parts.vae.encode(torch.randn(1, 3, 9, 32, 32)).latent_dist.mode()
        prediction = parts.transformer(
            hidden_states=latents, timestep=torch.tensor([999]), encoder_hidden_states=text
        ).sample
    assert text.shape == (1, 8, 32)
    assert latents.shape == (1, 16, 3, 4, 4)
    assert prediction.shape == latents.shape and torch.isfinite(prediction).all()


def test_tiny_transformer_config_overrides() -> None:
    assert tiny_transformer_config(num_layers=3)["num_layers"] == 3
    with pytest.raises(ConfigError, match="num_layer"):
        tiny_transformer_config(num_layer=3)


def test_full_transformer_config_is_the_14b_model() -> None:
    config = full_transformer_config()
    assert (config["num_layers"], config["num_attention_heads"], config["attention_head_dim"]) == (40, 40, 128)
    assert config["rope_dim"] == (44, 42, 42) and config["text_dim"] == 4096 and config["ffn_dim"] == 13824
    with init_empty_weights():
        model = HeliosTransformer3DModel.from_config(config)
    assert 14.0e9 < sum(p.numel() for p in model.parameters()) < 14.5e9
    assert model.config.has_multi_term_memory_patch and not model.config.is_amplify_history


def test_tiny_vae_config_compresses_like_wan() -> None:
    vae = AutoencoderKLWan.from_config(tiny_vae_config())
    assert vae.config.z_dim == 16 and len(vae.config.temperal_downsample) == 3
    assert (vae.config.scale_factor_temporal, vae.config.scale_factor_spatial) == (4, 8)


@pytest.mark.parametrize(
    ("kind", "scheduler_class", "stages"),
    [("unipc", HeliosScheduler, 1), ("unipc3", HeliosScheduler, 3), ("dmd", HeliosDMDScheduler, 3)],
)
def test_scheduler_configs_round_trip_through_their_class(kind: str, scheduler_class: type, stages: int) -> None:
    config = scheduler_config_for(kind)
    assert config["_class_name"] == scheduler_class.__name__
    scheduler = scheduler_class.from_config(config)
    assert scheduler.config.stages == stages and len(scheduler.config.stage_range) == stages + 1
    assert scheduler.config.stage_range[0] == 0 and scheduler.config.stage_range[-1] == 1
    rebuilt = {k: v for k, v in scheduler.config.items() if not k.startswith("_")}
    assert all(config[k] == (list(v) if isinstance(v, tuple) else v) for k, v in rebuilt.items())


def test_dmd_scheduler_config_matches_the_distilled_recipe() -> None:
    config = scheduler_config_for("dmd")
    assert config["stage_range"] == [0, 1 / 3, 2 / 3, 1] and config["gamma"] == 1 / 3 and config["shift"] == 1.0
    assert config["use_dynamic_shifting"] is True and config["time_shift_type"] == "linear"
    with pytest.raises(ConfigError, match="scheduler kind 'euler' is unknown"):
        scheduler_config_for("euler")


def test_write_tiny_model_folder_validates(tmp_path: Path) -> None:
    folder = write_tiny_model_folder(tmp_path / "tiny", seed=2, scheduler="unipc")
    info = validate_model_folder(folder)
    assert info.pipeline_class == "HeliosPipeline" and info.scheduler_config["stages"] == 1


def test_word_tokenizer_round_trip(tmp_path: Path) -> None:
    tokenizer = build_word_tokenizer(["A red cat walks", "the green grass"], model_max_length=16)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    encoded = tokenizer("Red CAT, zebra").input_ids
    assert encoded[-1] == tokenizer.eos_token_id and len(encoded) == 5  # red cat , <unk> </s>
    assert encoded[:2] == [tokenizer.convert_tokens_to_ids("red"), tokenizer.convert_tokens_to_ids("cat")]
    assert encoded[2] == tokenizer.convert_tokens_to_ids(",") != tokenizer.unk_token_id
    assert encoded[3] == tokenizer.unk_token_id
    padded = tokenizer(["red cat"], padding="max_length", max_length=6, return_tensors="pt")
    assert padded.input_ids[0, 3:].tolist() == [0, 0, 0] and padded.attention_mask[0].tolist() == [1, 1, 1, 0, 0, 0]

    tokenizer.save_pretrained(tmp_path / "tok")
    reloaded = AutoTokenizer.from_pretrained(tmp_path / "tok", local_files_only=True)
    assert isinstance(reloaded, PreTrainedTokenizerFast)
    assert reloaded.get_vocab() == tokenizer.get_vocab() and reloaded.model_max_length == 16
    assert reloaded("Red CAT, zebra").input_ids == encoded


def test_word_tokenizer_is_deterministic() -> None:
    words = ["sky blue river", "blue moon"]
    assert build_word_tokenizer(words).get_vocab() == build_word_tokenizer(list(words)).get_vocab()

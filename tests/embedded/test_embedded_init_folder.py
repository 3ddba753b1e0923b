"""The starting model folder: loads with the project's loader, right dtypes, components agree, fits the budget."""

import json

import pytest
import torch
from diffusers import AutoencoderKLWan
from safetensors import safe_open

from helios_core.embedded.config import PACKAGE_BUDGET_BYTES, embedded_tokenizer, embedded_vae_config
from helios_core.embedded.init_folder import build_embedded_init_parts, main
from helios_core.errors import ModelFolderError
from helios_core.model.folder import load_model_folder, validate_model_folder


@pytest.fixture()
def vae_folder(tmp_path):
    torch.manual_seed(0)
    vae = AutoencoderKLWan.from_config({**embedded_vae_config(), "base_dim": 8, "decoder_base_dim": 8,
                                        "latents_mean": [0.5] * 16, "latents_std": [2.0] * 16})
    vae.save_pretrained(tmp_path / "vae", safe_serialization=True)
    return tmp_path / "vae"


def test_folder_loads_and_stores_the_transformer_in_bf16(vae_folder, tmp_path, capsys):
    assert main(["--vae", str(vae_folder), "--out", str(tmp_path / "model")]) == 0
    assert "wrote" in capsys.readouterr().out
    info = validate_model_folder(tmp_path / "model")
    assert info.vae_config["latents_std"] == [2.0] * 16  # the trained VAE's statistics travel with it
    assert info.text_encoder_config["d_model"] == info.transformer_config["text_dim"]
    with safe_open(str(info.weight_files["transformer"][0]), "pt") as weights:
        dtypes = {key: weights.get_slice(key).get_dtype() for key in weights.keys()}
    assert dtypes["blocks.0.attn1.to_q.weight"] == "BF16"
    assert dtypes["blocks.0.scale_shift_table"] == "F32"  # a _keep_in_fp32_modules entry
    size = sum(f.stat().st_size for f in (tmp_path / "model").rglob("*") if f.is_file())
    assert size < PACKAGE_BUDGET_BYTES
    parts = load_model_folder(tmp_path / "model", dtype=torch.float32, text_dtype=torch.float32)
    ids = parts.tokenizer("a red circle moving left").input_ids
    assert parts.tokenizer.unk_token_id not in ids and len(parts.tokenizer) == len(embedded_tokenizer())
    scheduler = json.loads((tmp_path / "model" / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "HeliosScheduler" and scheduler["stages"] == 1


def test_seeds_fix_the_random_parts(vae_folder):
    first = build_embedded_init_parts(vae_folder)
    again = build_embedded_init_parts(vae_folder)
    other = build_embedded_init_parts(vae_folder, transformer_seed=1)
    weight = "blocks.0.attn1.to_q.weight"
    assert torch.equal(first.transformer.state_dict()[weight], again.transformer.state_dict()[weight])
    assert not torch.equal(first.transformer.state_dict()[weight], other.transformer.state_dict()[weight])


def test_a_folder_without_a_vae_is_refused(tmp_path):
    with pytest.raises(ModelFolderError, match="config.json"):
        build_embedded_init_parts(tmp_path)

"""The embedded model's configs build, agree with each other, and fit the package budget."""

import torch
from diffusers import AutoencoderKLWan, HeliosTransformer3DModel

from helios_core.embedded.config import (
    PACKAGE_BUDGET_BYTES,
    build_embedded_text_encoder,
    embedded_text_encoder_config,
    embedded_tokenizer,
    embedded_transformer_config,
    embedded_vae_config,
    folder_bytes_estimate,
)
from helios_core.world import VOCABULARY, caption, sample_scene


def test_vae_config_compresses_4x_in_time_and_8x_in_space():
    config = embedded_vae_config()
    vae = AutoencoderKLWan.from_config({**config, "base_dim": 8, "decoder_base_dim": 8}).eval()
    assert vae.config.scale_factor_spatial == 8 and vae.config.scale_factor_temporal == 4
    with torch.no_grad():
        latents = vae.encode(torch.zeros(1, 3, 9, 32, 64)).latent_dist.mean
        pixels = vae.decode(latents).sample
    assert latents.shape == (1, 16, 3, 4, 8)
    assert pixels.shape == (1, 3, 9, 32, 64)
    assert len(config["latents_mean"]) == len(config["latents_std"]) == config["z_dim"] == 16


def test_tokenizer_knows_every_caption_word():
    tokenizer = embedded_tokenizer()
    assert len(tokenizer) < 200  # word level: the embedding table stays tiny
    for seed in range(20):
        ids = tokenizer(caption(sample_scene(seed))).input_ids
        assert tokenizer.unk_token_id not in ids and ids[-1] == tokenizer.eos_token_id
    for word in VOCABULARY:
        assert tokenizer.unk_token_id not in tokenizer(word, add_special_tokens=False).input_ids, word


def test_text_encoder_is_fixed_by_its_seed_and_feeds_the_transformer():
    vocab = len(embedded_tokenizer())
    first, again, other = (build_embedded_text_encoder(vocab, seed) for seed in (0, 0, 1))
    weights = first.shared.weight
    assert torch.equal(weights, again.shared.weight) and not torch.equal(weights, other.shared.weight)
    transformer = embedded_transformer_config()
    assert transformer["text_dim"] == embedded_text_encoder_config(vocab)["d_model"] == first.config.d_model
    assert sum(transformer["rope_dim"]) == transformer["attention_head_dim"]
    assert all(d % 2 == 0 for d in transformer["rope_dim"])  # diffusers pairs cos/sin per axis
    assert transformer["in_channels"] == transformer["out_channels"] == embedded_vae_config()["z_dim"]


def test_transformer_config_builds_and_the_folder_fits_the_package_budget():
    with torch.device("meta"):
        transformer = HeliosTransformer3DModel.from_config(embedded_transformer_config())
    assert transformer.config.num_layers == 4
    sizes = folder_bytes_estimate(len(embedded_tokenizer()))
    assert sizes["total"] == sizes["transformer"] + sizes["vae"] + sizes["text_encoder"]
    assert sizes["total"] < 0.8 * PACKAGE_BUDGET_BYTES  # headroom for configs, tokenizer and model card
    parameters = sum(p.numel() for p in transformer.parameters())
    assert sizes["transformer"] < 4 * parameters  # stored in bf16 apart from the fp32-kept modules


def test_whole_chunk_decode_supports_the_embedded_layout():
    from helios_core.model.vae_fast import decode_chunk_whole, supports_whole_chunk

    torch.manual_seed(0)
    vae = AutoencoderKLWan.from_config({**embedded_vae_config(), "base_dim": 8, "decoder_base_dim": 8}).eval()
    latents = torch.randn(1, 16, 3, 4, 8)
    assert supports_whole_chunk(vae)
    with torch.no_grad():
        torch.testing.assert_close(decode_chunk_whole(vae, latents), vae.decode(latents).sample, rtol=0, atol=1e-5)

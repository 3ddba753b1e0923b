"""Load only the VAE, text encoder and tokenizer of a model folder (data preparation never needs the transformer).

`load_model_folder` always loads the transformer, which for the 14B model is 28 GB that data preparation would hold
for nothing. The folder is validated with the engine's `validate_model_folder` first (shapes, safetensors only),
then the three parts are loaded through their libraries' own local-only loaders.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from diffusers.utils import logging as diffusers_logging
from transformers import AutoTokenizer, UMT5EncoderModel
from transformers.utils import logging as transformers_logging

from helios_core.errors import ModelFolderError
from helios_core.model.folder import validate_model_folder
from helios_core.model.text import PromptEncoder
from helios_core.model.vae import LatentCodec


def load_encoders(model_path: Path, device: torch.device, max_sequence_length: int) -> tuple[LatentCodec, PromptEncoder]:
    info = validate_model_folder(model_path)
    if not info.has_text_encoder or not info.has_tokenizer:
        raise ModelFolderError(f"model folder {info.path} has no text encoder and tokenizer; data preparation "
                               "needs both to embed the captions")
    # The engine prints nothing: silence the libraries' loading bars, then restore them.
    bars = (diffusers_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled())
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        # fp32 VAE as the reference; the text encoder in fp32 too (it runs once per caption).
        vae = AutoencoderKLWan.from_pretrained(str(info.path / "vae"), local_files_only=True, use_safetensors=True,
                                               torch_dtype=torch.float32)
        text_encoder = UMT5EncoderModel.from_pretrained(str(info.path / "text_encoder"), local_files_only=True,
                                                        use_safetensors=True, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(info.path / "tokenizer"), local_files_only=True)
    finally:
        if bars[0]:
            diffusers_logging.enable_progress_bar()
        if bars[1]:
            transformers_logging.enable_progress_bar()
    codec = LatentCodec(vae.to(device).eval())
    return codec, PromptEncoder(tokenizer, text_encoder.to(device).eval(), max_sequence_length)

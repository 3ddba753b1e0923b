"""The encoders data preparation runs: a model folder's VAE as a LatentCodec and its text encoder as a PromptEncoder.

The transformer is never loaded (`load_encoding_parts`); loading, validation and strictness are the model folder's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from helios_core.model.folder import load_encoding_parts
from helios_core.model.text import PromptEncoder
from helios_core.model.vae import LatentCodec


def load_encoders(model_path: Path, device: torch.device, max_sequence_length: int) -> tuple[LatentCodec, PromptEncoder]:
    # fp32 VAE as the reference; the text encoder in fp32 too (it runs once per caption).
    vae, text_encoder, tokenizer = load_encoding_parts(Path(model_path), device=device)
    return LatentCodec(vae), PromptEncoder(tokenizer, text_encoder, max_sequence_length)

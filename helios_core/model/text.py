"""Prompt text -> UMT5 embeddings, the way Helios' reference pipeline makes them.

The reference cleans the prompt (HTML unescape, whitespace), tokenises to `max_sequence_length` tokens, runs the
encoder with the attention mask, then zeroes every position past the prompt's own length. We reproduce that exactly
(ftfy's text repair is used when ftfy is installed, as in diffusers; without it the rest of the cleaning still applies).
Embeddings are cached per prompt: a schedule or a batch reuses prompts, and the encoder is the one part of the model
whose output never changes for a given string.
"""

from __future__ import annotations

import html
import re

import torch
from transformers import PreTrainedTokenizerBase, UMT5EncoderModel

try:  # optional, as in diffusers: repairs mojibake in prompts pasted from the web
    import ftfy
except ImportError:  # pragma: no cover - depends on the environment
    ftfy = None


def clean_prompt(text: str) -> str:
    if ftfy is not None:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class PromptEncoder:
    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_encoder: UMT5EncoderModel,
        max_sequence_length: int = 512,
        *,
        run_device: torch.device | str = "cpu",
    ) -> None:
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        self.max_sequence_length = max_sequence_length
        # The encoder waits wherever it was loaded (the CPU on GPU machines: UMT5-XXL is 11 GB in bf16) and visits
        # `run_device` only while it encodes, so it holds no GPU memory while chunks are generated.
        self.run_device = torch.device(run_device)
        self._cache: dict[tuple[str, int], torch.Tensor] = {}

    @torch.no_grad()
    def encode(self, prompt: str) -> torch.Tensor:
        """One prompt -> (1, max_sequence_length, text_dim) float32 on the CPU (the caller moves it)."""
        key = (prompt, self.max_sequence_length)
        if key not in self._cache:
            self._cache[key] = self._encode_uncached(prompt)
        return self._cache[key]

    def _encode_uncached(self, prompt: str) -> torch.Tensor:
        inputs = self.tokenizer(
            [clean_prompt(prompt)],
            padding="max_length",
            max_length=self.max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        home = next(self.text_encoder.parameters()).device
        self.text_encoder.to(self.run_device)
        try:
            mask = inputs.attention_mask
            ids = inputs.input_ids.to(self.run_device)
            hidden = self.text_encoder(ids, mask.to(self.run_device)).last_hidden_state
        finally:
            self.text_encoder.to(home)
        seq_len = int(mask.gt(0).sum())
        embeds = torch.zeros_like(hidden[0])
        embeds[:seq_len] = hidden[0, :seq_len]
        return embeds.unsqueeze(0).float().cpu()

    def unknown_tokens(self, prompt: str) -> list[str]:
        """Words the tokenizer maps to its unknown token (used to warn about out-of-vocabulary prompts)."""
        unk = self.tokenizer.unk_token_id
        if unk is None:
            return []
        words = re.findall(r"[\w']+", clean_prompt(prompt).lower())
        return [w for w in words if unk in self.tokenizer(w, add_special_tokens=False).input_ids]

"""Does the model read its caption? A probe for training runs that start from scratch.

The first embedded model trained to a low loss yet ignored its prompts: on text-to-video samples, giving a clip
another clip's caption changed its loss by under 1% (the loss was low because history and low-noise steps are easy,
not because the text was used). This probe measures exactly that, on the stage's own objective:

    own      = the stage loss of text-to-video samples (history and anchor zeroed) with their own captions
    swapped  = the same samples, noise, timesteps and pyramid levels, with each caption moved to the next sample
    gap      = swapped / own - 1      ~0: the text is ignored;  > 0: the captions matter

`text_gap` is the same comparison with any other text in place of the own caption; `evaluate.evaluate_role_swap_gap`
uses it with each world caption's first object and background colours exchanged (the same words, other roles), which
a model that reads its prompt as a bag of words cannot tell apart.

Base and mid stages only (the distilled stage's regression target itself depends on the caption).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from helios_core.errors import ConfigError
from helios_core.training.dataset import TrainingBatch

PROBED_STAGES = ("base", "mid")


@torch.no_grad()
def caption_gap(stage, model: torch.nn.Module, batches: Iterable[TrainingBatch], seed: int,
                device: torch.device) -> dict[str, float]:
    """`stage` has `loss(model, batch, generator)`; batches need at least two samples with different captions."""
    batches = list(batches)
    if any(batch.text.shape[0] < 2 for batch in batches):
        raise ConfigError("the caption probe needs batches of at least 2 samples (loop.batch_size >= 2)")
    own, swapped = text_gap(stage, model, batches, [batch.text.roll(1, dims=0) for batch in batches], seed, device)
    return {"own_caption_loss": own, "swapped_caption_loss": swapped, "caption_gap": swapped / own - 1.0}


@torch.no_grad()
def text_gap(stage, model: torch.nn.Module, batches: Sequence[TrainingBatch], other_texts: Sequence[torch.Tensor],
             seed: int, device: torch.device) -> tuple[float, float]:
    """Mean text-to-video stage loss of `batches` with their own text and with `other_texts` in its place (one
    (B, L, D) tensor per batch), on the same sigmas, levels and noise; history and anchor zeroed."""
    generator = torch.Generator("cpu").manual_seed(seed)
    own_total = other_total = 0.0
    for batch, other_text in zip(batches, other_texts, strict=True):
        history, anchor = torch.zeros_like(batch.history), torch.zeros_like(batch.anchor)
        state = generator.get_state()
        own_total += float(stage.loss(model, TrainingBatch(batch.target, history, anchor, batch.text).to(device),
                                      generator))
        generator.set_state(state)  # the same sigmas, levels and noise for both
        other = TrainingBatch(batch.target, history, anchor, other_text.to(batch.text))
        other_total += float(stage.loss(model, other.to(device), generator))
    return own_total / len(batches), other_total / len(batches)

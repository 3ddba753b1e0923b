"""Does the model read its caption? A probe for training runs that start from scratch.

The first embedded model trained to a low loss yet ignored its prompts: on text-to-video samples, giving a clip
another clip's caption changed its loss by under 1% (the loss was low because history and low-noise steps are easy,
not because the text was used). This probe measures exactly that, on the stage's own objective:

    own      = the stage loss of text-to-video samples (history and anchor zeroed) with their own captions
    swapped  = the same samples, noise, timesteps and pyramid levels, with each caption moved to the next sample
    gap      = swapped / own - 1      ~0: the text is ignored;  > 0: the captions matter

Base and mid stages only (the distilled stage's regression target itself depends on the caption).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from helios_core.errors import ConfigError
from helios_core.training.dataset import TrainingBatch

PROBED_STAGES = ("base", "mid")


@torch.no_grad()
def caption_gap(stage, model: torch.nn.Module, batches: Iterable[TrainingBatch], seed: int,
                device: torch.device) -> dict[str, float]:
    """`stage` has `loss(model, batch, generator)`; batches need at least two samples with different captions."""
    generator = torch.Generator("cpu").manual_seed(seed)
    own_total = swapped_total = 0.0
    count = 0
    for batch in batches:
        if batch.text.shape[0] < 2:
            raise ConfigError("the caption probe needs batches of at least 2 samples (loop.batch_size >= 2)")
        history, anchor = torch.zeros_like(batch.history), torch.zeros_like(batch.anchor)
        own = TrainingBatch(batch.target, history, anchor, batch.text)
        swapped = TrainingBatch(batch.target, history, anchor, batch.text.roll(1, dims=0))
        state = generator.get_state()
        own_total += float(stage.loss(model, own.to(device), generator))
        generator.set_state(state)  # the same sigmas, levels and noise for both
        swapped_total += float(stage.loss(model, swapped.to(device), generator))
        count += 1
    own_loss, swapped_loss = own_total / count, swapped_total / count
    return {"own_caption_loss": own_loss, "swapped_caption_loss": swapped_loss,
            "caption_gap": swapped_loss / own_loss - 1.0}

"""A deterministic validation loss: the stage's loss on fixed batches with fixed noise, for any checkpoint.

Training losses are noisy (a new sigma, layout and noise every step, and for the pyramid a different resolution),
so progress is judged on the same `num_batches` batches drawn from a generator seeded with `seed`: identical
samples, layouts, corruptions, noise levels and noise for the base weights and for every checkpoint. Runs without
gradients; the model is switched to eval mode.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from helios_core.errors import ConfigError
from helios_core.model.folder import load_text_encoder, load_tokenizer
from helios_core.model.text import PromptEncoder
from helios_core.training.caption_probe import PROBED_STAGES, caption_gap, text_gap
from helios_core.training.config import TrainConfig
from helios_core.training.dataset import SampleOrder, TrainingBatch
from helios_core.training.history_aug import augment_history
from helios_core.training.model_setup import trainable_parameters
from helios_core.training.trainer import _resolve_precision, build_components
from helios_core.world import PromptError, caption, parse_prompt, swap_first_object_and_background_colors


def _evaluated_model(config: TrainConfig, model_path: Path, data_dir: Path, checkpoint: Path | None, use_ema: bool):
    """The stage's components with the starting weights, or a checkpoint's (EMA or trained) copied in; eval mode."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = _resolve_precision(config)
    parts = build_components(config, Path(model_path), Path(data_dir), device, precision)
    model = parts.transformer
    if checkpoint is not None:
        weights = load_file(str(Path(checkpoint) / ("ema.safetensors" if use_ema else "trainable.safetensors")))
        for name, param in trainable_parameters(model).items():
            param.copy_(weights[name])
    model.eval()
    return parts, model, device, precision


@torch.no_grad()
def evaluate_loss(config: TrainConfig, *, model_path: Path, data_dir: Path, checkpoint: Path | None = None,
                  num_batches: int = 4, seed: int = 1234, use_ema: bool = False) -> float:
    """Mean stage loss over fixed batches; `checkpoint=None` evaluates the starting weights."""
    config = config.validate()
    parts, model, device, precision = _evaluated_model(config, model_path, data_dir, checkpoint, use_ema)
    if hasattr(parts.stage, "raw_model"):
        parts.stage.raw_model = model
    generator = torch.Generator("cpu").manual_seed(seed)
    order = SampleOrder(len(parts.dataset), seed)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")
    total = 0.0
    for index in range(num_batches):
        batch = order.batch(parts.dataset, index * config.loop.batch_size, config.loop.batch_size)
        batch.history, batch.anchor = augment_history(batch.history, batch.anchor, config.drop, config.corrupt,
                                                      config.history.latent_frames_per_chunk, generator)
        with autocast:
            total += float(parts.stage.loss(model, batch.to(device), generator))
    return total / num_batches


@torch.no_grad()
def evaluate_caption_gap(config: TrainConfig, *, model_path: Path, data_dir: Path, checkpoint: Path | None = None,
                         num_batches: int = 4, seed: int = 1234, use_ema: bool = False) -> dict[str, float]:
    """`caption_probe.caption_gap` on fixed batches of the prepared data, for the starting weights or a checkpoint."""
    if config.stage not in PROBED_STAGES:
        raise ConfigError(f"the caption probe covers the {' and '.join(PROBED_STAGES)} stages, not {config.stage}")
    config = config.validate()
    parts, model, device, precision = _evaluated_model(config, model_path, data_dir, checkpoint, use_ema)
    order = SampleOrder(len(parts.dataset), seed)
    size = max(2, config.loop.batch_size)
    batches = [order.batch(parts.dataset, index * size, size) for index in range(num_batches)]
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return caption_gap(parts.stage, model, batches, seed, device)


@torch.no_grad()
def evaluate_role_swap_gap(config: TrainConfig, *, model_path: Path, data_dir: Path, checkpoint: Path | None = None,
                           num_batches: int = 4, seed: int = 1234, use_ema: bool = False) -> dict[str, float]:
    """Does the model read which word plays which part? The caption probe's comparison, but the other text is each
    sample's own world caption with its first object's and its background's colours exchanged, encoded by
    `model_path`'s text encoder: the same words in other roles. A model that reads its prompt as a bag of words
    scores ~0 (`role_swap_gap` = swapped / own - 1); one that binds colours to roles scores > 0."""
    if config.stage not in PROBED_STAGES:
        raise ConfigError(f"the role-swap probe covers the {' and '.join(PROBED_STAGES)} stages, not {config.stage}")
    config = config.validate()
    parts, model, device, precision = _evaluated_model(config, model_path, data_dir, checkpoint, use_ema)
    encoder = PromptEncoder(load_tokenizer(Path(model_path)), load_text_encoder(Path(model_path)),
                            max_sequence_length=int(parts.dataset.settings["max_sequence_length"]))
    order = SampleOrder(len(parts.dataset), seed)
    size = config.loop.batch_size
    batches, swapped_texts = [], []
    for index in range(num_batches):
        items = [order.item_at(index * size + offset) for offset in range(size)]  # what order.batch would draw
        batches.append(TrainingBatch.collate([parts.dataset[item] for item in items]))
        swapped_texts.append(torch.cat([encoder.encode(_role_swapped(parts.dataset.caption(item)))
                                        for item in items]))
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
        own, swapped = text_gap(parts.stage, model, batches, swapped_texts, seed, device)
    return {"own_caption_loss": own, "role_swapped_loss": swapped, "role_swap_gap": swapped / own - 1.0}


def _role_swapped(caption_text: str) -> str:
    try:
        spec = parse_prompt(caption_text)
    except PromptError as error:
        raise ConfigError(f"the role-swap probe needs world captions; {caption_text!r}: {error}") from None
    return caption(swap_first_object_and_background_colors(spec))

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
from helios_core.training.caption_probe import PROBED_STAGES, caption_gap
from helios_core.training.config import TrainConfig
from helios_core.training.dataset import SampleOrder
from helios_core.training.history_aug import augment_history
from helios_core.training.model_setup import trainable_parameters
from helios_core.training.trainer import _resolve_precision, build_components


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


"""The trainable transformer: load it, add the LoRA adapter (peft) or unfreeze it all, and name what trains.

Precision: trainable weights are always fp32 (the optimizer's master copy). With LoRA on a GPU the frozen base is
held in bf16 (peft keeps the adapter itself fp32: `autocast_adapter_dtype`), which is what lets the 14B model train
on one 80 GB GPU; full fine-tuning keeps the whole transformer fp32. On a CPU everything is fp32.

The adapter's random init (peft's kaiming-uniform A, zero B) draws from the global torch RNG; it is drawn inside
`fork_rng` under the run's seed, so building the model never shifts the caller's random stream and the same seed
gives the same adapter.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import HeliosTransformer3DModel
from peft import LoraConfig

from helios_core.model.folder import load_model_folder
from helios_core.training.config import LoraSettings, TrainConfig


def lora_config(settings: LoraSettings) -> LoraConfig:
    return LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=list(settings.target_modules),
                      init_lora_weights=True)


def add_lora(transformer: HeliosTransformer3DModel, settings: LoraSettings, seed: int) -> None:
    devices = [transformer.device] if transformer.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        transformer.add_adapter(lora_config(settings))


@dataclass
class LoadedModel:
    transformer: HeliosTransformer3DModel  # ready to train
    scheduler_config: dict
    vae: torch.nn.Module | None  # kept (fp32, on the device) only for validation videos
    tokenizer: object | None


def load_transformer(model_path: Path, config: TrainConfig, device: torch.device, base_dtype: torch.dtype, *,
                     keep_vae: bool = False) -> LoadedModel:
    """The transformer ready to train, and what else the run needs. Only LoRA lets the frozen base be `base_dtype`."""
    dtype = base_dtype if config.lora.enabled else torch.float32
    parts = load_model_folder(model_path, device=device, dtype=dtype, load_text_encoder=False)
    transformer = parts.transformer
    vae = parts.vae.requires_grad_(False) if keep_vae else None  # training on cached latents needs no VAE
    del parts.vae
    transformer.requires_grad_(False)
    if config.lora.enabled:
        add_lora(transformer, config.lora, config.loop.seed)  # add_adapter marks only the adapter trainable
    else:
        transformer.requires_grad_(True)
        transformer.float()
    if config.loop.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    if config.loop.compile:
        # In place, per block (parameter names unchanged, so checkpoints and exports do not see it).
        transformer.compile_repeated_blocks(fullgraph=True, dynamic=False)
    transformer.train()
    return LoadedModel(transformer, parts.scheduler_config, vae, parts.tokenizer)


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """Name -> parameter for everything that trains, in a fixed order (the optimizer state is saved by these names)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


@contextlib.contextmanager
def weights_swapped_in(parameters: dict[str, torch.nn.Parameter], weights: dict[str, torch.Tensor] | None
                       ) -> Iterator[None]:
    """Use `weights` (e.g. the EMA) for a while; the exact previous values come back afterwards (kept on the CPU)."""
    if weights is None:
        yield
        return
    with torch.no_grad():
        saved = {name: p.detach().to("cpu", copy=True) for name, p in parameters.items()}
        for name, p in parameters.items():
            p.copy_(weights[name])
    try:
        yield
    finally:
        with torch.no_grad():
            for name, p in parameters.items():
                p.copy_(saved[name])


@contextlib.contextmanager
def teacher_view(model: torch.nn.Module, frozen_copy: torch.nn.Module | None) -> Iterator[torch.nn.Module]:
    """The frozen teacher: the same weights with the adapter switched off (LoRA), or a frozen copy (full FT)."""
    if frozen_copy is not None:
        yield frozen_copy
        return
    model.disable_adapters()
    try:
        yield model
    finally:
        model.enable_adapters()


def frozen_copy_if_needed(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module | None:
    if config.stage != "distilled" or config.lora.enabled:
        return None
    teacher = copy.deepcopy(model).requires_grad_(False).eval()
    return teacher


class Ema:
    """Exponential moving average of the trainable weights, fp32, updated after each optimizer step."""

    def __init__(self, parameters: dict[str, torch.nn.Parameter], decay: float, start_step: int) -> None:
        self.decay = decay
        self.start_step = start_step
        self.shadow = {name: p.detach().float().clone() for name, p in parameters.items()}

    @torch.no_grad()
    def update(self, parameters: dict[str, torch.nn.Parameter], step: int) -> None:
        for name, p in parameters.items():
            if step < self.start_step:
                self.shadow[name].copy_(p.detach())  # before the start the average just follows the weights
            else:
                self.shadow[name].lerp_(p.detach().float(), 1.0 - self.decay)

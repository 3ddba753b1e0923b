"""`helios train export`: a checkpoint + its base model -> a complete model folder the engine and diffusers load.

The base folder's VAE, text encoder, tokenizer and scheduler are kept; the transformer gets the checkpoint's weights:
with LoRA, the adapter is rebuilt from the checkpoint's saved config, loaded strictly by name, fused into the base
weights (diffusers' `fuse_lora`) and removed (`unload_lora`), so the result is a plain HeliosTransformer3DModel.
`scheduler` replaces the scheduler config with one of the engine's kinds ("unipc" Base, "unipc3" Mid, "dmd"
Distilled), e.g. after training a mid-stage model from Helios-Base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file

from helios_core.devices import DTYPES
from helios_core.errors import ConfigError, ModelFolderError
from helios_core.model.folder import load_model_folder, save_model_folder, validate_model_folder
from helios_core.model.tiny import scheduler_config_for
from helios_core.training.checkpoint import latest_checkpoint, read_checkpoint_config
from helios_core.training.model_setup import add_lora

EXPORT_DTYPES = DTYPES  # the same names as --dtype


def export_model(checkpoint_dir: Path, base_model_path: Path, out_path: Path, *, use_ema: bool = False,
                 scheduler: Literal["keep", "unipc", "unipc3", "dmd"] = "keep", dtype: str = "bf16",
                 overwrite: bool = False) -> Path:
    """`checkpoint_dir` is one `step_*` folder or a run's out folder (its newest checkpoint is used)."""
    checkpoint = Path(checkpoint_dir)
    if not (checkpoint / "state.json").is_file():
        newest = latest_checkpoint(checkpoint)
        if newest is None:
            raise ModelFolderError(f"{checkpoint} is neither a checkpoint (step_*/ with state.json) nor a run folder "
                                   "holding checkpoints")
        checkpoint = newest
    if dtype not in EXPORT_DTYPES:
        raise ConfigError(f"export dtype {dtype!r} is not one of {', '.join(EXPORT_DTYPES)}")
    config = read_checkpoint_config(checkpoint)
    weights_file = checkpoint / ("ema.safetensors" if use_ema else "trainable.safetensors")
    if not weights_file.is_file():
        raise ModelFolderError(f"{weights_file} is missing (was the run trained with EMA on?)")
    info = validate_model_folder(base_model_path)
    parts = load_model_folder(base_model_path, dtype=torch.float32, load_text_encoder=info.has_text_encoder,
                              text_dtype=torch.float32)
    transformer = parts.transformer
    weights = load_file(str(weights_file))
    if config.lora.enabled:
        add_lora(transformer, config.lora, config.loop.seed)
        expected = {n for n, p in transformer.named_parameters() if p.requires_grad}
        _check_names(weights_file, expected, set(weights))
        state = dict(transformer.state_dict())
        state.update(weights)
        transformer.load_state_dict(state, strict=True)
        transformer.fuse_lora()
        transformer.unload_lora()
    else:
        _check_names(weights_file, set(transformer.state_dict()), set(weights))
        transformer.load_state_dict(weights, strict=True)
    parts.transformer = _cast_like_the_loader(transformer, EXPORT_DTYPES[dtype]).eval()
    if scheduler != "keep":
        parts.scheduler_config = scheduler_config_for(scheduler)
    save_model_folder(parts, Path(out_path), overwrite=overwrite)
    return Path(out_path)


def _cast_like_the_loader(transformer: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast to `dtype` except the class's `_keep_in_fp32_modules` (norms, time embedder), as the loader does."""
    keep = set(getattr(transformer, "_keep_in_fp32_modules", None) or [])
    for name, param in transformer.named_parameters():
        if not keep.intersection(name.split(".")):
            param.data = param.data.to(dtype)
    return transformer


def _check_names(source: Path, expected: set[str], found: set[str]) -> None:
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        what = f"lacks {missing[0]}" if missing else f"has unexpected {unexpected[0]}"
        raise ModelFolderError(f"{source} {what}; it does not belong to this base model and LoRA setting")

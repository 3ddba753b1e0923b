"""Assemble the embedded model's STARTING folder: trained VAE + frozen text encoder + tokenizer + fresh transformer.

`helios train` trains a transformer inside a model folder; this writes the folder it starts from:
- vae/: the VAE trained by `train_vae` (copied as loaded: fp32, its measured latents_mean / latents_std);
- tokenizer/: the word-level tokenizer over the world's VOCABULARY;
- text_encoder/: the frozen UMT5 encoder with random weights fixed by `text_seed` (fp32);
- transformer/: a HeliosTransformer3DModel of `embedded_transformer_config()` with random weights fixed by
  `transformer_seed`, stored in bf16 except its `_keep_in_fp32_modules` (fp32), the loader's own rule;
- scheduler/: "unipc" (Helios-Base, one stage), the config the base training stage samples with.
Random weights never move the caller's RNG (fork_rng). `python -m helios_core.embedded.init_folder --vae DIR --out
DIR` does the same from a shell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, HeliosTransformer3DModel

from helios_core.embedded.config import build_embedded_text_encoder, embedded_tokenizer, embedded_transformer_config
from helios_core.errors import ModelFolderError
from helios_core.model.folder import ModelParts, save_model_folder
from helios_core.model.tiny import scheduler_config_for


def build_embedded_init_parts(vae_folder: Path, *, transformer_seed: int = 0, text_seed: int = 0,
                              scheduler: str = "unipc") -> ModelParts:
    """The starting parts; `vae_folder` is a saved AutoencoderKLWan folder (config.json + safetensors)."""
    vae_folder = Path(vae_folder)
    if not (vae_folder / "config.json").is_file():
        raise ModelFolderError(f"{vae_folder} has no config.json; pass the folder train_vae saved (--out)")
    vae = AutoencoderKLWan.from_pretrained(vae_folder, local_files_only=True).float().eval()
    tokenizer = embedded_tokenizer()
    text_encoder = build_embedded_text_encoder(len(tokenizer), text_seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(transformer_seed)
        transformer = HeliosTransformer3DModel.from_config(embedded_transformer_config())
    if transformer.config.in_channels != vae.config.z_dim:
        raise ModelFolderError(f"{vae_folder}: z_dim {vae.config.z_dim} differs from the transformer's "
                               f"{transformer.config.in_channels} latent channels; train the VAE with z_dim 16")
    _store_in_bf16(transformer)
    return ModelParts(transformer=transformer.eval(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                      scheduler_config=scheduler_config_for(scheduler))


def _store_in_bf16(model: torch.nn.Module) -> None:
    """bf16 for every parameter except those of `_keep_in_fp32_modules` (matched on whole dotted-name parts)."""
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not keep.intersection(name.split(".")):
            tensor.data = tensor.data.to(torch.bfloat16)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helios_core.embedded.init_folder", description=__doc__.split("\n")[0])
    parser.add_argument("--vae", type=Path, required=True, help="the folder train_vae saved")
    parser.add_argument("--out", type=Path, required=True, help="where to write the model folder")
    parser.add_argument("--transformer-seed", type=int, default=0)
    parser.add_argument("--text-seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    parts = build_embedded_init_parts(args.vae, transformer_seed=args.transformer_seed, text_seed=args.text_seed)
    save_model_folder(parts, args.out, overwrite=args.overwrite)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({size / 2**20:.1f} MiB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

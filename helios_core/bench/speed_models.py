"""Random-weight Helios models for the speed bench: the real 14B transformer and Wan VAE, or tiny ones for tests.

Full size builds exactly what `from_pretrained(torch_dtype=bf16)` would hold, without a download:
- the transformer is constructed under `torch.device(device)` with bf16 as the default dtype, so its 14.3 B
  parameters are allocated and initialised on the GPU (no 57 GB fp32 copy in CPU RAM); then, as diffusers does for
  `_keep_in_fp32_modules`, the parameters of those modules (time embedder, scale-shift tables, norm1/2/3) go
  back to fp32 (29.2 M parameters);
- the VAE is `AutoencoderKLWan()` with its defaults (the Wan 2.1 VAE, 126.9 M parameters) in fp32, the dtype the
  official scripts and the diffusers docstring load it in.
Random weights do the same arithmetic as trained ones (no data-dependent control flow), so timings carry over.
The UMT5 text encoder is not built: the bench passes random prompt embeddings of its output shape instead.

Tiny (`full_size=False`) uses the tiny configs of `helios_core.model.tiny` in fp32, for CPU tests.
Building never changes the caller's global RNG state (fork_rng).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLWan, HeliosTransformer3DModel

from helios_core.model.tiny import full_transformer_config, tiny_transformer_config, tiny_vae_config

TEXT_TOKENS = 512  # UMT5 output length the released pipelines pad prompts to


@dataclass
class BenchModels:
    transformer: HeliosTransformer3DModel
    vae: AutoencoderKLWan
    transformer_config: dict
    device: torch.device
    full_size: bool

    @property
    def text_dim(self) -> int:
        return int(self.transformer_config["text_dim"])

    @property
    def model_dtype(self) -> torch.dtype:
        return self.transformer.dtype  # diffusers skips the fp32-kept modules when it reports this

    def describe(self) -> dict:
        transformer_params = sum(p.numel() for p in self.transformer.parameters())
        fp32_params = sum(p.numel() for p in self.transformer.parameters() if p.dtype == torch.float32)
        vae_params = sum(p.numel() for p in self.vae.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for m in (self.transformer, self.vae) for p in m.parameters())
        return {
            "full_size": self.full_size,
            "transformer_params": transformer_params,
            "transformer_fp32_params": fp32_params,
            "transformer_dtype": str(self.model_dtype).removeprefix("torch."),
            "vae_params": vae_params,
            "vae_dtype": str(next(self.vae.parameters()).dtype).removeprefix("torch."),
            "weights_gib": weight_bytes / 2**30,
            "text_encoder": f"not run: random prompt embeddings (1, {TEXT_TOKENS}, {self.text_dim})",
        }

    def vae_in(self, dtype: torch.dtype) -> AutoencoderKLWan:
        """The VAE in `dtype`: the shared one, or a cached copy (diffusers' side keeps the shared fp32 VAE)."""
        if next(self.vae.parameters()).dtype == dtype:
            return self.vae
        copies = self.__dict__.setdefault("_vae_copies", {})
        if dtype not in copies:
            # Rebuilt from config + weights rather than deep-copied: a copy would also carry any instance attribute
            # set on the shared VAE (the recorder's timed `decode`, bound to the fp32 original).
            twin = type(self.vae).from_config(self.vae.config)
            twin.load_state_dict(self.vae.state_dict())
            copies[dtype] = twin.to(self.device, dtype).eval()
        return copies[dtype]

    def prompt_embeds(self, seed: int) -> torch.Tensor:
        """Random stand-in for UMT5's output, (1, 512, text_dim) in the transformer's dtype."""
        generator = torch.Generator("cpu").manual_seed(seed)
        embeds = torch.randn(1, TEXT_TOKENS, self.text_dim, generator=generator)
        return embeds.to(self.device, self.model_dtype)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def keep_modules_in_fp32(model: torch.nn.Module) -> int:
    """Cast the parameters of `model._keep_in_fp32_modules` to fp32 (matched on whole name parts, as diffusers
    matches module names); returns how many parameters that touched."""
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    touched = 0
    for name, param in model.named_parameters():
        if keep.intersection(name.split(".")) and param.dtype != torch.float32:
            param.data = param.data.float()
            touched += param.numel()
    return touched


def build_bench_models(*, full_size: bool, device: torch.device | str, seed: int = 0) -> BenchModels:
    device = torch.device(device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        if full_size:
            config = full_transformer_config()
            with torch.device(device), _default_dtype(torch.bfloat16):
                transformer = HeliosTransformer3DModel(**config)
            keep_modules_in_fp32(transformer)
            with torch.device(device):
                vae = AutoencoderKLWan()
        else:
            config = tiny_transformer_config()
            transformer = HeliosTransformer3DModel(**config).to(device)
            vae = AutoencoderKLWan(**tiny_vae_config()).to(device)
    transformer.eval().requires_grad_(False)
    vae.eval().requires_grad_(False)
    return BenchModels(transformer, vae, config, device, full_size)

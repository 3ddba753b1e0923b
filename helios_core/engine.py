"""The engine's one face: check a request cheaply, load a model folder once, stream videos from it.

    HeliosEngine.check_request(model_path, request)   # before any weight loads: folder, sizes, lengths
    engine = HeliosEngine.load(model_path, runtime)    # None = the embedded default model
    for chunk in engine.generate(request): ...         # ChunkResult per 33-frame chunk, already decoded

The engine owns device and dtype choice, the text encoder's placement (it runs once per prompt and is then moved off
the GPU), and the drift detector, which sees every chunk and, with `drift.anti_drift`, noises the history latents
the way the paper's adaptive remedy does. It prints nothing; callers render `ChunkResult`s as they like.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import torch

from helios_core.config import GenerationConfig, RuntimeConfig
from helios_core.devices import DTYPES, resolve_device, resolve_dtype
from helios_core.drift import DriftConfig, DriftDetector, add_history_noise
from helios_core.errors import ConfigError, ModelFolderError
from helios_core.kernels import apply_kernel_choice
from helios_core.model.attention import apply_attention_backend
from helios_core.model.folder import ModelFolderInfo, load_model_folder, load_text_encoder, validate_model_folder
from helios_core.model.offload import enable_group_offload
from helios_core.model.quantize import quantize_transformer
from helios_core.model.runtime_checks import require_runtime_choices
from helios_core.model.text import PromptEncoder
from helios_core.model.vae import WHOLE_CHUNK_DECODE, LatentCodec
from helios_core.model.vae_fast import supports_whole_chunk
from helios_core.pipeline import FramePlan, StreamingGenerator, plan_frames
from helios_core.request import ChunkResult, GenerationRequest

def default_model_path() -> Path:
    """The small model trained by the project and shipped inside the package."""
    return Path(__file__).resolve().parent / "default_model"


def size_multiple(info: ModelFolderInfo, num_stages: int) -> int:
    """Pixel height/width must divide by VAE scale x patch x 2^(pyramid stages - 1)."""
    spatial = int(info.vae_config.get("scale_factor_spatial", 8))
    patch = int(info.transformer_config.get("patch_size", (1, 2, 2))[-1])
    return spatial * patch * 2 ** (num_stages - 1)


class HeliosEngine:
    def __init__(self, generator: StreamingGenerator, prompt_encoder: PromptEncoder | None, model_path: Path,
                 runtime: RuntimeConfig) -> None:
        self.generator = generator
        self.prompt_encoder = prompt_encoder
        self.model_path = model_path
        self.runtime = runtime

    @property
    def model_name(self) -> str:
        return "default" if self.model_path == default_model_path() else str(self.model_path)

    # -- before loading --------------------------------------------------------------------------------------------
    @staticmethod
    def check_request(model_path: Path | None, request: GenerationRequest) -> ModelFolderInfo:
        """Everything that can be checked without loading weights. Raises UserInputError subclasses."""
        cfg = request.config.validate()
        request.segments()  # empty prompts
        path = model_path or default_model_path()
        if model_path is None and not path.is_dir():
            raise ModelFolderError("the embedded default model is not installed; pass --model PATH (or set HELIOS_MODEL)")
        info = validate_model_folder(path)
        multiple = size_multiple(info, cfg.sampler.num_stages)
        if cfg.video.height % multiple or cfg.video.width % multiple:
            raise ConfigError(f"size {cfg.video.height}x{cfg.video.width} must be a multiple of {multiple} for this "
                              f"model and sampler (e.g. {_round_to(cfg.video.height, multiple)}x"
                              f"{_round_to(cfg.video.width, multiple)})")
        if not info.has_text_encoder or not info.has_tokenizer:
            raise ModelFolderError(f"model folder {path} has no text encoder and tokenizer, which generation needs")
        device = resolve_device(cfg.runtime.device)
        require_runtime_choices(cfg.runtime, device, resolve_dtype(cfg.runtime.dtype, device))
        return info

    @staticmethod
    def plan(request: GenerationRequest) -> FramePlan:
        return plan_frames(request.config)

    # -- loading ---------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, model_path: Path | None, runtime: RuntimeConfig) -> HeliosEngine:
        path = model_path or default_model_path()
        device = resolve_device(runtime.device)
        dtype = resolve_dtype(runtime.dtype, device)
        require_runtime_choices(runtime, device, dtype)  # one-line errors before any weights load
        # Weights load straight onto the GPU unless they are offloaded; the text encoder always loads on the CPU and
        # visits the GPU only to encode (see PromptEncoder).
        load_device = device if runtime.offload == "none" else torch.device("cpu")
        parts = load_model_folder(path, device=load_device, dtype=dtype, load_text_encoder=False)
        prompt_encoder = None
        if parts.tokenizer is not None:
            text_dtype = torch.float32 if device.type == "cpu" else dtype
            text_encoder = load_text_encoder(path, dtype=text_dtype)
            prompt_encoder = PromptEncoder(parts.tokenizer, text_encoder, run_device=device)
        transformer = parts.transformer.eval().requires_grad_(False)
        # Before offloading and compiling: group offloading captures each block's forward when it is installed.
        quantize_transformer(transformer, runtime.quantize)  # before offload and compile, which wrap the layers
        apply_attention_backend(transformer, runtime.attention)  # before the kernels: fused processors inherit it
        apply_kernel_choice(transformer, runtime.kernels, device)
        vae = parts.vae.eval().to(DTYPES[runtime.vae_dtype])
        if runtime.offload == "group":
            # diffusers' group offloading streams one block's weights at a time onto the GPU (with prefetch).
            enable_group_offload(transformer, device)
            vae.to(device)
        if runtime.compile:
            transformer.compile_repeated_blocks(fullgraph=True, dynamic=False)
        codec = LatentCodec(vae, whole_chunk_decode=WHOLE_CHUNK_DECODE[runtime.vae_decode], vae_norm=runtime.vae_norm)
        if runtime.vae_decode == "whole" and not supports_whole_chunk(vae):
            raise ConfigError("runtime.vae_decode=whole does not support this model's VAE; use frames or auto")
        generator = StreamingGenerator(transformer, codec, parts.scheduler_config,
                                       prompt_encoder.encode if prompt_encoder else None, device)
        return cls(generator, prompt_encoder, path, runtime)

    # -- generating ------------------------------------------------------------------------------------------------
    def unknown_words(self, prompt: str) -> list[str]:
        return self.prompt_encoder.unknown_tokens(prompt) if self.prompt_encoder else []

    def generate(self, request: GenerationRequest,
                 text_embeds: dict[str, torch.Tensor] | None = None) -> Iterator[ChunkResult]:
        cfg = request.config
        if self.prompt_encoder is not None:
            self.prompt_encoder.max_sequence_length = cfg.prompt.max_sequence_length
        detector = DriftDetector(DriftConfig(), cfg.video.fps, plan_frames(cfg).chunk_pixel_frames)
        drift_noise = torch.Generator("cpu").manual_seed(request.seed + 1)  # own stream: chunks before a fix agree
        hooks = _drift_hooks(cfg, detector, drift_noise) if cfg.drift.detect else {}
        text_started = time.perf_counter()
        with torch.inference_mode():
            for chunk in self.generator.stream(request, text_embeds=text_embeds,
                                               overlap_decode=self.runtime.overlap_decode, **hooks):
                timings = dict(chunk.timings)
                if chunk.index == 0:
                    timings["first_chunk_total"] = time.perf_counter() - text_started
                yield ChunkResult(
                    chunk_index=chunk.index, num_chunks=chunk.num_chunks, pixel_frames=chunk.pixel_frames,
                    first_frame_index=chunk.first_frame_index, timings=timings,
                    latent_stats=_latent_stats(chunk.latents),
                    drift_warnings=chunk.notes.get("warnings", []), actions=chunk.notes.get("actions", []),
                )


PIXEL_DRIFT_KINDS = frozenset({"brightness", "saturation", "color", "sharpness"})


def _drift_hooks(cfg: GenerationConfig, detector: DriftDetector, noise: torch.Generator) -> dict:
    """The latent rule runs before a chunk enters the history (so its remedy can act there); pixel checks run when
    the chunk's frames are decoded, which with overlapped decoding is one chunk later, so a pixel warning is acted
    on at the next chunk to enter the history."""
    pixel_warning_pending = False

    def latent_hook(index: int, latents: torch.Tensor, notes: dict) -> torch.Tensor:
        nonlocal pixel_warning_pending
        notes["warnings"] = detector.observe_chunk(index, None, latents)
        if not cfg.drift.anti_drift:
            return latents
        triggers = ["latent statistics"] if detector.latent_drift_flag else []
        if cfg.drift.remedy_on == "any" and pixel_warning_pending:
            triggers.append("pixel drift")
        pixel_warning_pending = False
        if not triggers:
            return latents
        notes["actions"] = [f"chunk {index}: history latents noised (strength {cfg.drift.noise_strength}) "
                            f"after {' and '.join(triggers)}"]
        return add_history_noise(latents, cfg.drift.noise_strength, noise)

    def pixel_hook(index: int, frames, notes: dict) -> None:
        nonlocal pixel_warning_pending
        found = detector.observe_chunk(index, frames, None)
        pixel_warning_pending |= any(w.kind in PIXEL_DRIFT_KINDS for w in found)
        notes["warnings"] = notes.get("warnings", []) + found

    return {"latent_hook": latent_hook, "pixel_hook": pixel_hook}


def _latent_stats(latents: torch.Tensor) -> dict[str, list[float]]:
    dims = [d for d in range(latents.ndim) if d != 1]
    return {"mean": latents.mean(dim=dims).tolist(), "var": latents.var(dim=dims).tolist()}


def _round_to(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)

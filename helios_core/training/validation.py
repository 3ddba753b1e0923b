"""Validation videos during training: every `loop.validate_every` steps, a one-chunk video per validation prompt
from the current weights (the EMA when EMA is on), written to OUT/validation/step_XXXXXX.mp4 (`_pK` for prompt K > 0).

The video is made by the engine's own streaming loop (`helios_core.pipeline.StreamingGenerator`) with the stage's
sampler, i.e. the generation preset of the stage's name: base = flow UniPC 50 steps CFG 5, mid = pyramid UniPC,
distilled = pyramid DMD. One chunk (33 frames with the Wan VAE) at the prepared data's size and frame rate, the
training run's history layout, seed `loop.seed`, text-to-video. Prompts (and the negative prompt, for CFG) are encoded
once when the run starts: the text encoder is loaded on the CPU, used and dropped. The VAE stays on the device.

Exact resume is unaffected: generation draws only from its own seeded generator, runs under `fork_rng` and
without gradients, puts the model back in train mode, and the EMA swap restores the trained weights bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from helios_core.config import GenerationConfig
from helios_core.errors import ConfigError
from helios_core.model.folder import load_text_encoder, validate_model_folder
from helios_core.model.text import PromptEncoder
from helios_core.model.vae import LatentCodec
from helios_core.pipeline import StreamingGenerator
from helios_core.presets import load_preset
from helios_core.request import GenerationRequest
from helios_core.training.config import TrainConfig
from helios_core.training.model_setup import LoadedModel, weights_swapped_in
from helios_core.video import write_video

VALIDATION_DIR = "validation"


def validation_generation_config(config: TrainConfig, settings: dict, chunk_pixel_frames: int,
                                 device: torch.device) -> GenerationConfig:
    """The stage's generation preset at the prepared data's size, one chunk long, with the run's history layout."""
    chunk = config.history.latent_frames_per_chunk
    return load_preset(config.stage).with_values({
        "video.height": int(settings["height"]), "video.width": int(settings["width"]),
        "video.fps": float(settings.get("fps", 24.0)), "video.num_frames": chunk_pixel_frames,
        "history.sizes": list(config.history.sizes), "history.latent_frames_per_chunk": chunk,
        "history.keep_first_frame": config.history.keep_first_frame,
        "prompt.max_sequence_length": int(settings.get("max_sequence_length", 512)),
        "drift.detect": False, "runtime.device": str(device),
    })


def video_name(step: int, prompt_index: int) -> str:
    suffix = f"_p{prompt_index}" if prompt_index else ""
    return f"step_{step:06d}{suffix}.mp4"


class Validator:
    def __init__(self, config: TrainConfig, model: LoadedModel, model_path: Path, data_settings: dict,
                 out_dir: Path, device: torch.device, precision: str) -> None:
        info = validate_model_folder(Path(model_path))
        if not info.has_text_encoder or model.tokenizer is None or model.vae is None:
            raise ConfigError(f"loop.validate_every needs a model folder with a text encoder and tokenizer to encode "
                              f"the validation prompts; {model_path} has none (set loop.validate_every=0)")
        self.config = config
        self.out_dir = Path(out_dir) / VALIDATION_DIR
        self.device = device
        self.precision = precision
        codec = LatentCodec(model.vae.eval())
        pixel_frames = codec.pixel_frames_for(config.history.latent_frames_per_chunk)
        self.generation = validation_generation_config(config, data_settings, pixel_frames, device).validate()
        self.prompts = tuple(config.loop.validation_prompts)
        self.embeds = self._encode(model, Path(model_path))
        self.transformer = model.transformer
        self.generator = StreamingGenerator(model.transformer, codec, model.scheduler_config, None, device)

    def _encode(self, model: LoadedModel, model_path: Path) -> dict[str, torch.Tensor]:
        text_dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        encoder = PromptEncoder(model.tokenizer, load_text_encoder(model_path, dtype=text_dtype),
                                self.generation.prompt.max_sequence_length, run_device=self.device)
        wanted = (*self.prompts, self.generation.prompt.negative_prompt)
        embeds = {prompt: encoder.encode(prompt) for prompt in wanted}
        del encoder  # UMT5-XXL is 11 GB in bf16: it is not kept for the rest of the run
        return embeds

    def run(self, step: int, trainables: dict[str, torch.nn.Parameter],
            ema_weights: dict[str, torch.Tensor] | None) -> list[str]:
        """Write this step's videos; return their paths relative to the run folder (for log.jsonl)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        model = self.transformer
        was_training = model.training
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with weights_swapped_in(trainables, ema_weights), torch.random.fork_rng(devices=cuda), autocast:
            model.eval()
            try:
                for index, prompt in enumerate(self.prompts):
                    request = GenerationRequest(config=self.generation, seed=self.config.loop.seed, prompt=prompt)
                    with torch.inference_mode():
                        frames = [chunk.pixel_frames for chunk in self.generator.stream(
                            request, text_embeds=self.embeds, overlap_decode=False)]
                    path = self.out_dir / video_name(step, index)
                    write_video(path, np.concatenate(frames), self.generation.video.fps, overwrite=True)
                    written.append(f"{VALIDATION_DIR}/{path.name}")
            finally:
                model.train(was_training)
        return written

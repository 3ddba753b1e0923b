"""End to end: train the tiny model to overfit one prepared clip, export it, and the engine generates that clip.

This ties `helios data prepare` -> `helios train --stage mid` -> `helios train export` -> `HeliosEngine.generate`
together: if any of them disagreed with the others on latent normalisation, velocity sign, timestep scale, pyramid
stages, history/anchor layout or text embeddings, the generation would not land on the clip the model memorised.
The comparison is in latent space, against the prepared target latents (exactly what training saw), on the
latents the engine's streaming loop hands to the decoder: the tiny VAE is random, so its pixels would blur any
difference. The untrained model is the control.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

from helios_core.config import RuntimeConfig
from helios_core.engine import HeliosEngine
from helios_core.model.tiny import tiny_generation_config
from helios_core.request import GenerationRequest
from helios_core.training import load_train_config, prepare_dataset, train
from helios_core.training.export import export_model

from conftest import SEQUENCE_LENGTH, SIZE, write_manifest

CAPTION = "a red square moves right"
# Full fine-tuning at a high rate on one chunk; no history augmentation (the chunk is chunk 0: no history anyway).
OVERFIT = {"lora.enabled": False, "optim.lr": 3e-3, "optim.warmup_steps": 0, "optim.weight_decay": 0.0,
           "loop.batch_size": 2, "loop.max_steps": 150, "loop.checkpoint_every": 150,
           "loop.gradient_checkpointing": False, "drop.enabled": False, "corrupt.enabled": False}


def generate(model: Path) -> torch.Tensor:
    engine = HeliosEngine.load(model, RuntimeConfig(device="cpu", dtype="fp32"))
    config = tiny_generation_config(**{"video.num_frames": 33, "sampler.kind": "pyramid_unipc",
                                       "sampler.steps": [4, 4, 4], "sampler.guidance_scale": 1.0,
                                       "drift.detect": False})
    request = GenerationRequest(config=config, seed=3, prompt=CAPTION)
    engine.prompt_encoder.max_sequence_length = config.prompt.max_sequence_length  # as engine.generate sets it
    with torch.inference_mode():
        (chunk,) = engine.generator.stream(request)
    return chunk.latents


def test_a_model_overfit_on_one_clip_generates_that_clip(video_dir: Path, tiny_model_dir: Path, tmp_path: Path):
    manifest = write_manifest(tmp_path / "one.jsonl", [{"path": str(video_dir / "c.mp4"), "caption": CAPTION}])
    data = tmp_path / "data"
    prepare_dataset(manifest, data, model_path=tiny_model_dir, height=SIZE, width=SIZE,
                    max_sequence_length=SEQUENCE_LENGTH)
    record = json.loads((data / "index.jsonl").read_text().splitlines()[-1])
    with safe_open(data / record["shard"], framework="pt") as handle:
        target = handle.get_tensor("latents")[:1].float()  # (1, C, 9, h, w): the only chunk

    train(load_train_config("mid", OVERFIT), model_path=tiny_model_dir, data_dir=data, out_dir=tmp_path / "run")
    trained = export_model(tmp_path / "run", tiny_model_dir, tmp_path / "model", scheduler="unipc3", dtype="fp32")

    before, after = (float(((generate(m) - target) ** 2).mean() / target.var()) for m in (tiny_model_dir, trained))
    assert after < 0.2 and after < 0.2 * before, (before, after)

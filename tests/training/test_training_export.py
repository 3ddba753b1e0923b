"""export_model merges the trained LoRA into a model folder that the engine loads and generates from."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helios_core.config import RuntimeConfig
from helios_core.engine import HeliosEngine
from helios_core.errors import ModelFolderError
from helios_core.model.folder import load_model_folder
from helios_core.model.tiny import tiny_generation_config
from helios_core.request import GenerationRequest
from helios_core.training import export_model, load_train_config, train
from helios_core.training.checkpoint import latest_checkpoint
from helios_core.training.model_setup import load_transformer, trainable_parameters
from helios_core.training.stages.common import HistoryLayout

TINY = {"lora.rank": 4, "lora.alpha": 8, "optim.lr": 1e-2, "loop.batch_size": 1, "loop.max_steps": 3,
        "loop.gradient_checkpointing": False}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir: Path, prepared_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("export_run")
    train(load_train_config("base", TINY), model_path=tiny_model_dir, data_dir=prepared_dir, out_dir=out)
    return out


def _velocity(model: torch.nn.Module, layout: HistoryLayout) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    noisy = torch.randn(1, 16, 9, 8, 8, generator=generator)
    history, anchor = torch.randn(1, 16, 19, 8, 8, generator=generator), torch.randn(1, 16, 1, 8, 8, generator=generator)
    text = torch.randn(1, 16, 32, generator=generator)
    with torch.no_grad():
        return layout.forward(model.eval(), noisy, torch.tensor([500.0]), text, history, anchor)


def test_exported_transformer_equals_the_trained_lora_model(trained_run: Path, tiny_model_dir: Path, tmp_path: Path):
    config = load_train_config("base", TINY)
    out = export_model(trained_run, tiny_model_dir, tmp_path / "exported", dtype="fp32")
    exported = load_model_folder(out, dtype=torch.float32, load_text_encoder=False).transformer
    trained = load_transformer(tiny_model_dir, config, torch.device("cpu"), torch.float32).transformer
    weights = load_file(str(latest_checkpoint(trained_run) / "trainable.safetensors"))
    with torch.no_grad():
        for name, param in trainable_parameters(trained).items():
            param.copy_(weights[name])
    base = load_model_folder(tiny_model_dir, dtype=torch.float32, load_text_encoder=False).transformer
    layout = HistoryLayout(config.history)
    merged, adapted, original = (_velocity(m, layout) for m in (exported, trained, base))
    torch.testing.assert_close(merged, adapted, rtol=1e-4, atol=1e-4)
    assert (merged - original).abs().max() > 1e-3  # the training changed something, and the export kept it


def test_export_then_the_engine_generates_a_chunk(trained_run: Path, tiny_model_dir: Path, tmp_path: Path):
    out = export_model(trained_run, tiny_model_dir, tmp_path / "model", scheduler="unipc3")
    engine = HeliosEngine.load(out, RuntimeConfig(device="cpu"))
    config = tiny_generation_config(**{"video.num_frames": 33, "sampler.kind": "pyramid_unipc",
                                       "sampler.steps": [1, 1, 1], "sampler.guidance_scale": 1.0})
    chunks = list(engine.generate(GenerationRequest(config=config, seed=0, prompt="a red square moves")))
    assert len(chunks) == 1 and chunks[0].pixel_frames.shape == (33, 64, 64, 3)
    assert chunks[0].pixel_frames.std() > 0


def test_export_refuses_a_folder_without_checkpoints(tmp_path: Path, tiny_model_dir: Path):
    with pytest.raises(ModelFolderError, match="neither a checkpoint"):
        export_model(tmp_path, tiny_model_dir, tmp_path / "model")

"""DMD (distill.method=dmd): the rollout matches the sampler, the critic learns, only the right adapters move, the run
resumes bit for bit, and its export generates in the engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from helios_core.config import RuntimeConfig, SamplerConfig
from helios_core.engine import HeliosEngine
from helios_core.errors import ConfigError
from helios_core.model.tiny import tiny_generation_config
from helios_core.request import GenerationRequest
from helios_core.samplers import ChunkDenoiser, TextConditioning
from helios_core.training import export_model, load_train_config, train
from helios_core.training.checkpoint import checkpoint_dirs, load_extra_state
from helios_core.training.config import DistillConfig
from helios_core.training.dataset import SampleOrder
from helios_core.training.model_setup import trainable_parameters
from helios_core.training.stages.dmd import (
    CRITIC_ADAPTER,
    GENERATOR_ADAPTER,
    DmdStage,
    active_adapter,
    adapter_parameters,
)
from helios_core.training.stages.dmd_losses import annealed_beta, dmd_gradient, renoise_timesteps, unit_draws
from helios_core.training.stages.dmd_rollout import PyramidRollout
from helios_core.training.trainer import build_components

DMD = {"distill.method": "dmd", "lora.rank": 4, "lora.alpha": 4, "distill.critic_lora_rank": 4,
       "distill.critic_lora_alpha": 4, "distill.generator_steps": [1, 1, 1],
       "distill.critic_steps_per_generator_step": 2,
       "loop.batch_size": 1, "loop.gradient_checkpointing": False, "optim.lr": 1e-3, "distill.critic_lr": 1e-3,
       "loop.checkpoint_every": 100, "ema.enabled": False}


def _components(model_dir: Path, data_dir: Path, **overrides):
    config = load_train_config("distilled", {**DMD, **overrides})
    parts = build_components(config, model_dir, data_dir, torch.device("cpu"), "fp32")
    assert isinstance(parts.stage, DmdStage)
    return config, parts


def _fixed_batch(parts, index: int = 0):
    return SampleOrder(len(parts.dataset), 0).batch(parts.dataset, index, 1)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


def test_renoise_timesteps_are_clamped_shifted_and_the_gradient_is_normalised():
    settings = DistillConfig(method="dmd")
    unit = torch.linspace(0, 1, 101)
    timesteps = renoise_timesteps(unit, settings)
    # t = 20 shifts to 1000 * 5 * 0.02 / (1 + 4 * 0.02); the top of the shifted range is clamped to 980.
    assert math.isclose(float(timesteps.min()), 100 / 1.08, rel_tol=1e-5) and timesteps.max() == 980.0
    assert timesteps[50] > 800  # shift 5 pushes the middle of the range towards high noise
    assert annealed_beta(settings, 0) == (4.0, 1.5) and annealed_beta(settings, 500) == (1.0, 1.0)
    draws = unit_draws(4000, torch.Generator().manual_seed(0), (4.0, 1.5))
    assert abs(float(draws.mean()) - 4.0 / 5.5) < 0.02  # Beta(4, 1.5) mean
    x, real = torch.zeros(2, 1, 1, 2, 2), torch.full((2, 1, 1, 2, 2), 2.0)
    real[1] = 4.0
    gradient = dmd_gradient(x, torch.full_like(x, 3.0), real)
    assert torch.allclose(gradient[0], torch.full_like(gradient[0], 0.5))  # (3 - 2) / mean|0 - 2|
    assert torch.allclose(gradient[1], torch.full_like(gradient[1], -0.25))  # (3 - 4) / mean|0 - 4|


def test_rollout_with_last_step_exits_is_the_pyramid_dmd_sampler(tiny_model_dir: Path, prepared_dir: Path):
    _, parts = _components(tiny_model_dir, prepared_dir)
    batch = _fixed_batch(parts)
    model, layout = parts.transformer.eval(), parts.layout
    scheduler_config = json.loads((tiny_model_dir / "scheduler" / "scheduler_config.json").read_text())
    patch = tuple(model.config.patch_size)
    rollout = PyramidRollout((2, 2, 2), scheduler_config, patch)
    noise = torch.randn(batch.target.shape, generator=torch.Generator().manual_seed(3))

    def velocity_of(latents, timestep, text=batch.text):
        return layout.forward(model, latents, timestep, text, batch.history, batch.anchor)

    with torch.no_grad():
        ours = rollout.run(noise, velocity_of, torch.Generator().manual_seed(5), [1, 1, 1], with_grad=False)
        sampler = ChunkDenoiser(SamplerConfig(kind="pyramid_dmd", steps=(2, 2, 2)), scheduler_config, patch)
        reference = sampler.denoise(noise, lambda lat, t, text: velocity_of(lat, t, text),
                                    TextConditioning(batch.text, None), torch.Generator().manual_seed(5),
                                    is_first_chunk=False)
    torch.testing.assert_close(ours, reference)


def test_only_the_critic_moves_in_critic_steps_and_only_the_generator_gets_gradients(tiny_model_dir: Path,
                                                                                       prepared_dir: Path):
    _, parts = _components(tiny_model_dir, prepared_dir)
    model, stage = parts.transformer, parts.stage
    generator_names = set(adapter_parameters(model, GENERATOR_ADAPTER))
    critic_names = set(adapter_parameters(model, CRITIC_ADAPTER))
    assert set(trainable_parameters(model)) == generator_names and critic_names and not generator_names & critic_names
    rng = torch.Generator().manual_seed(0)
    before = _snapshot(model)
    stage.train_critic(model, lambda: _fixed_batch(parts), rng, 0)
    assert _changed(before, model) == critic_names  # every critic weight, nothing else
    assert set(trainable_parameters(model)) == generator_names  # the generator adapter is active again

    loss = stage.loss(model, _fixed_batch(parts), rng)
    assert math.isfinite(float(loss.detach())) and float(loss.detach()) > 0
    loss.backward()
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    assert with_grad == generator_names
    assert any(float(model.get_parameter(n).grad.abs().max()) > 0 for n in generator_names)
    before = _snapshot(model)
    torch.optim.AdamW(list(trainable_parameters(model).values()), lr=1e-2).step()
    assert _changed(before, model) == generator_names  # the teacher (base weights) and the critic stay as they were


def test_critic_loss_decreases_on_a_fixed_batch(tiny_model_dir: Path, prepared_dir: Path):
    _, parts = _components(tiny_model_dir, prepared_dir, **{"distill.critic_lr": 1e-2,
                                                           "distill.critic_steps_per_generator_step": 20})
    model, stage = parts.transformer, parts.stage
    batch = _fixed_batch(parts)
    with torch.no_grad():
        sample = stage.generate(model, batch, torch.Generator().manual_seed(1), with_grad=False)

    def fixed_critic_loss() -> float:  # the same four noise levels and noises every time
        with torch.no_grad(), active_adapter(model, CRITIC_ADAPTER):
            return sum(float(stage.critic_loss(model, batch, sample, torch.Generator().manual_seed(seed)))
                       for seed in range(4)) / 4

    before = fixed_critic_loss()
    losses = stage.train_critic(model, lambda: batch, torch.Generator().manual_seed(0), 0)
    after = fixed_critic_loss()
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)
    assert after < 0.97 * before, (before, after)  # deterministic measure: any drop is the training (about 6%)



def test_dmd_run_resumes_bit_for_bit_with_critic_ema_and_rng(tiny_model_dir: Path, prepared_dir: Path,
                                                                 tmp_path: Path, killed_then_resumed):
    overrides = {**DMD, "loop.max_steps": 4, "loop.checkpoint_every": 2, "ema.enabled": True, "ema.start_step": 1,
                 "loop.gradient_checkpointing": True, "distill.generator_steps": [2, 1, 1]}
    config = load_train_config("distilled", overrides)
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    whole = train(config, out_dir=tmp_path / "whole", **paths)
    assert all(math.isfinite(v) and v > 0 for v in whole.losses)

    resumed = killed_then_resumed(config, tmp_path / "split", 3, **paths)
    assert resumed.steps_done == 2 and resumed.losses == whole.losses[2:]

    def log(run: str) -> list[tuple]:
        lines = (tmp_path / run / "log.jsonl").read_text().splitlines()
        return [(e["step"], e["loss"], e["critic_loss"]) for e in map(json.loads, lines)]

    assert log("split") == log("whole") and len(log("whole")) == 4
    last_whole, last_split = checkpoint_dirs(tmp_path / "whole")[-1], checkpoint_dirs(tmp_path / "split")[-1]
    for name in ("trainable", "ema", "critic", "critic_optimizer", "optimizer"):
        assert (last_split / f"{name}.safetensors").read_bytes() == (last_whole / f"{name}.safetensors").read_bytes()

    # Both adapters trained (they start as zero-B LoRA, so any change is the training).
    trained = load_file(str(last_whole / "trainable.safetensors"))
    critic = load_extra_state(last_whole, DmdStage.extra_state_names)["critic"]
    assert any(float(t.abs().max()) > 0 for n, t in trained.items() if "lora_B" in n)
    assert any(float(t.abs().max()) > 0 for n, t in critic.items() if "lora_B" in n)


def test_export_after_dmd_generates_in_the_engine(tiny_model_dir: Path, prepared_dir: Path, tmp_path: Path):
    config = load_train_config("distilled", {**DMD, "loop.max_steps": 2, "optim.lr": 1e-2})
    run = train(config, model_path=tiny_model_dir, data_dir=prepared_dir, out_dir=tmp_path / "run")
    out = export_model(run.out_dir, tiny_model_dir, tmp_path / "model", scheduler="dmd")
    engine = HeliosEngine.load(out, RuntimeConfig(device="cpu"))
    gen_config = tiny_generation_config(**{"video.num_frames": 33, "sampler.kind": "pyramid_dmd",
                                           "sampler.steps": [1, 1, 1], "sampler.guidance_scale": 1.0})
    chunks = list(engine.generate(GenerationRequest(config=gen_config, seed=0, prompt="a red square moves")))
    assert len(chunks) == 1 and chunks[0].pixel_frames.shape == (33, 64, 64, 3) and chunks[0].pixel_frames.std() > 0


def test_generator_init_loads_an_earlier_adapter_and_dmd_refuses_full_fine_tuning(tiny_model_dir: Path,
                                                                                  prepared_dir: Path, tmp_path: Path):
    _, parts = _components(tiny_model_dir, prepared_dir)
    names = list(adapter_parameters(parts.transformer, GENERATOR_ADAPTER))
    weights = {n: torch.randn(parts.transformer.get_parameter(n).shape) for n in names}
    checkpoint = tmp_path / "ode" / "checkpoints" / "step_000010"
    checkpoint.mkdir(parents=True)
    save_file(weights, str(checkpoint / "trainable.safetensors"))
    (checkpoint / "state.json").write_text("{}")
    _, started = _components(tiny_model_dir, prepared_dir, **{"distill.generator_init": str(tmp_path / "ode")})
    for name, value in trainable_parameters(started.transformer).items():
        assert torch.equal(value.detach(), weights[name])
    with pytest.raises(ConfigError, match="generator_init"):
        _components(tiny_model_dir, prepared_dir, **{"distill.generator_init": str(tmp_path / "ode"), "lora.rank": 2})
    with pytest.raises(ConfigError, match="lora.enabled"):
        load_train_config("distilled", {"distill.method": "dmd", "lora.enabled": False})

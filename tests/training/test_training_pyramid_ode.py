"""`distill.method: pyramid_ode` trains on exactly what the [1, 1, 1] pyramid DMD sampler feeds the model.

An oracle "model" knows a fixed clip X and, for each pyramid stage (read off the latents' width) and that stage's
timestep, the sigma diffusers' HeliosDMDScheduler uses; it returns the velocity v with z - sigma v = X_k. Handed to
the engine's `ChunkDenoiser` it turns noise into X (so the oracle's timestep -> sigma table is the sampler's), and
handed to the stage it has zero loss (so the stage reads velocities exactly as the sampler does). The stage's model
inputs are compared with the sampler's call by call, and a wrong sigma table is shown to give a clearly positive loss.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helios_core.config import SamplerConfig
from helios_core.errors import ConfigError
from helios_core.model.tiny import scheduler_config_for
from helios_core.samplers import ChunkDenoiser, TextConditioning, build_scheduler
from helios_core.samplers.denoise import flux_shift
from helios_core.training import TrainingBatch, load_train_config, train
from helios_core.training.checkpoint import checkpoint_dirs
from helios_core.training.stages.common import HistoryLayout
from helios_core.training.stages.mid import downsample
from helios_core.training.stages.pyramid_ode import PyramidOdeStage

SHAPE = (2, 4, 9, 16, 16)  # (B, C, T, h, w): 4x4, 8x8, 16x16 latents over the three stages
PATCH = (1, 2, 2)
SEED = 3
TINY_TEACHER = {"lora.enabled": False, "distill.teacher_steps": [2, 2, 2]}


class ToyTeacher(torch.nn.Module):
    """A deterministic stand-in for the frozen teacher: any velocity will do, it only has to make some X."""

    def forward(self, hidden_states, timestep, **kwargs):
        return (0.6 * hidden_states + 0.2 * torch.sin(hidden_states * 3) + timestep.float().view(-1, 1, 1, 1, 1)
                / 2000,)


class ScaledStudent(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, hidden_states, timestep, **kwargs):
        return (self.weight * hidden_states,)


class Oracle(torch.nn.Module):
    """v = (z - X_k) / sigma, with X_k the clip at the latents' size and sigma from `sigma_of(width, timestep)`;
    records every call's (latents, timestep)."""

    def __init__(self, targets: dict[int, torch.Tensor], sigma_of) -> None:
        super().__init__()
        self.targets, self.sigma_of = targets, sigma_of
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, hidden_states, timestep, **kwargs):
        width = hidden_states.shape[-1]
        self.calls.append((hidden_states.detach().clone(), timestep.clone()))
        sigma = self.sigma_of(width, timestep)
        return (((hidden_states.double() - self.targets[width].double()) / sigma).float(),)


def sampler_sigma_table(scheduler_config: dict) -> dict[tuple[int, int], float]:
    """(width, integer timestep) -> sigma of each stage of the [1, 1, 1] DMD sampler, straight from diffusers: mu is
    the Flux line of the token count before the stage's upsample (stage 0 and 1: the 4x4 size)."""
    scheduler = build_scheduler("pyramid_dmd", scheduler_config, 3)
    table = {}
    for k in range(3):
        width_before = SHAPE[-1] // 2 ** (2 - max(k - 1, 0))
        tokens = SHAPE[2] * width_before * width_before // (PATCH[1] * PATCH[2])
        scheduler.set_timesteps(1, k, mu=flux_shift(tokens, scheduler.config))
        assert len(scheduler.timesteps) == 1 and float(scheduler.sigmas[-1]) == 0.0
        table[(SHAPE[-1] // 2 ** (2 - k), int(scheduler.timesteps[0]))] = float(scheduler.sigmas[0])
    return table


def exact_sigma(table):
    def sigma_of(width: int, timestep: torch.Tensor) -> float:
        return table[(width, int(timestep[0]))]  # a KeyError if the timestep is not the sampler's
    return sigma_of


def make_stage(scheduler: str, **overrides) -> tuple[PyramidOdeStage, TrainingBatch]:
    config = load_train_config("distilled", {**TINY_TEACHER, "distill.method": "pyramid_ode", **overrides})
    g = torch.Generator().manual_seed(0)
    batch = TrainingBatch(torch.randn(SHAPE, generator=g), torch.randn(2, 4, 19, 16, 16, generator=g),
                          torch.randn(2, 4, 1, 16, 16, generator=g), torch.randn(2, 5, 8, generator=g))
    stage = PyramidOdeStage(config, HistoryLayout(config.history), scheduler_config_for(scheduler), PATCH,
                            torch.zeros(5, 8), ToyTeacher())
    return stage, batch


def teacher_clip(stage: PyramidOdeStage, batch: TrainingBatch) -> tuple[torch.Tensor, torch.Generator, torch.Tensor]:
    """The stage's noise, the teacher's X from it, and the generator as the stage leaves it after the teacher."""
    generator = torch.Generator().manual_seed(SEED)
    noise = torch.randn(SHAPE, generator=generator)
    clip = stage.teacher.endpoint(torch.nn.Identity(), batch, noise, generator)
    return noise, generator, clip


def oracle_for(stage: PyramidOdeStage, clip: torch.Tensor, sigma_of) -> Oracle:
    """X_k: the teacher's clip bilinearly downsampled to stage k (MidStage's `downsample`), coarsest first."""
    return Oracle({SHAPE[-1] // 2 ** (2 - k): downsample(clip, 2 ** (2 - k)) for k in range(3)}, sigma_of)


@pytest.mark.parametrize("scheduler", ["dmd", "unipc3"])  # linear and exponential time shift
def test_oracle_has_zero_loss_and_the_sampler_turns_it_into_the_clip(scheduler: str):
    stage, batch = make_stage(scheduler)
    noise, after_teacher, clip = teacher_clip(stage, batch)
    assert clip.var() > 0.01 and torch.isfinite(clip).all()
    table = sampler_sigma_table(scheduler_config_for(scheduler))

    oracle = oracle_for(stage, clip, exact_sigma(table))
    loss = stage.loss(oracle, batch, torch.Generator().manual_seed(SEED))
    assert float(loss) < 1e-10 * stage.config.distill.regression_weight * float(clip.var())  # (a)
    trained = oracle.calls

    sampler = ChunkDenoiser(SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1)), scheduler_config_for(scheduler), PATCH)
    sampled = oracle_for(stage, clip, exact_sigma(table))
    text = TextConditioning(batch.text, None)
    out = sampler.denoise(noise, lambda z, t, e: sampled(hidden_states=z, timestep=t)[0], text, after_teacher,
                          is_first_chunk=False)
    assert (out - clip).abs().max() < 1e-5  # (b): the table is the sampler's
    # (d): the same inputs, call by call: resolution, values (the same block noise) and integer timesteps
    assert len(trained) == len(sampled.calls) == 3
    for (z_train, t_train), (z_sample, t_sample) in zip(trained, sampled.calls):
        assert z_train.shape == z_sample.shape and torch.allclose(z_train, z_sample, atol=1e-6, rtol=0)
        assert t_train.dtype == t_sample.dtype == torch.int64 and torch.equal(t_train, t_sample)
    assert [z.shape[-1] for z, _ in trained] == [4, 8, 16]


def test_a_wrong_timestep_to_sigma_map_gives_a_clearly_positive_loss():
    stage, batch = make_stage("dmd")
    _, _, clip = teacher_clip(stage, batch)
    table = sampler_sigma_table(scheduler_config_for("dmd"))
    scale = stage.config.distill.regression_weight * float(clip.var())

    def loss_with(sigma_of) -> float:
        return float(stage.loss(oracle_for(stage, clip, sigma_of), batch, torch.Generator().manual_seed(SEED)))

    # `ode`'s convention, sigma = t / 1000: far off (the stages' one-step timesteps are not 1000 sigma)
    assert loss_with(lambda width, t: float(t[0]) / 1000) > 1e-2 * scale
    # every stage read with the finest stage's sigma (another mu): a small but unmistakable error
    finest = table[next(key for key in table if key[0] == SHAPE[-1])]
    assert loss_with(lambda width, t: finest) > 1e-9 * scale
    assert loss_with(exact_sigma(table)) < 1e-12 * scale


def test_the_student_gets_gradients_and_the_stage_logs_each_level():
    stage, batch = make_stage("dmd")
    student = ScaledStudent()
    loss = stage.loss(student, batch, torch.Generator().manual_seed(SEED))
    loss.backward()
    assert torch.isfinite(loss) and student.weight.grad is not None and student.weight.grad.abs() > 0
    assert set(stage.last_metrics) == {"stage0_mse", "stage1_mse", "stage2_mse"}
    mean = sum(stage.last_metrics.values()) / 3
    assert math.isclose(float(loss), stage.config.distill.regression_weight * mean, rel_tol=1e-5)


def test_config_accepts_pyramid_ode_without_lora_and_refuses_unknown_methods():
    config = load_train_config("distilled", {"distill.method": "pyramid_ode", "lora.enabled": False}).validate()
    assert config.distill.method == "pyramid_ode" and load_train_config("distilled").distill.method == "ode"
    with pytest.raises(ConfigError, match="must be one of"):
        load_train_config("distilled", {"distill.method": "pyramid"})
    with pytest.raises(ConfigError, match="num_stages >= 2"):
        make_stage("dmd", **{"pyramid.num_stages": 1, "pyramid.stage_range": [0, 1], "pyramid.sample_ratios": [1]})


TRAIN = {**TINY_TEACHER, "distill.method": "pyramid_ode", "distill.teacher_steps": [1, 1, 1],
         "distill.teacher_guidance": 1.0, "loop.batch_size": 1, "loop.gradient_checkpointing": False,
         "optim.lr": 1e-3, "loop.checkpoint_every": 100, "ema.enabled": False}


def test_full_fine_tuning_trains_and_resumes_exactly(tiny_model_dir: Path, prepared_dir: Path, tmp_path: Path):
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    whole = train(load_train_config("distilled", {**TRAIN, "loop.max_steps": 3}), out_dir=tmp_path / "whole", **paths)
    assert len(whole.losses) == 3 and all(math.isfinite(x) and x > 0 for x in whole.losses)
    assert (whole.last_checkpoint / "trainable.safetensors").is_file()
    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert all({"stage0_mse", "stage1_mse", "stage2_mse"} <= set(entry) for entry in log)  # the pyramid stage ran

    first = train(load_train_config("distilled", {**TRAIN, "loop.max_steps": 2}), out_dir=tmp_path / "split", **paths)
    assert first.final_step == 2 and first.losses == whole.losses[:2]
    resumed = train(load_train_config("distilled", {**TRAIN, "loop.max_steps": 3}), out_dir=tmp_path / "split",
                    resume=True, **paths)
    assert resumed.steps_done == 1 and resumed.losses == whole.losses[2:]  # exact, not approximate
    final = [checkpoint_dirs(tmp_path / run)[-1] / "trainable.safetensors" for run in ("whole", "split")]
    assert final[0].read_bytes() == final[1].read_bytes()

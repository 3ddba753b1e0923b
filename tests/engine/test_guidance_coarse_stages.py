"""sampler.guidance_coarse_stages: classifier-free guidance in the coarsest pyramid stages only."""

from __future__ import annotations

import pytest
import torch

from helios_core.config import SamplerConfig
from helios_core.errors import ConfigError
from helios_core.model.tiny import scheduler_config_for
from helios_core.samplers import ChunkDenoiser, TextConditioning

COND, UNCOND = torch.full((1, 4, 8), 1.0), torch.full((1, 4, 8), -1.0)


def run(sampler: SamplerConfig,
        inputs: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, list[tuple[int, str]]]:
    """Denoise one small chunk with a fake model whose velocity depends on the text; returns the latents and the
    (latent width, 'cond' | 'uncond') of every call, and appends each conditional call's input to `inputs`."""
    calls = []

    def predict(latents: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        calls.append((latents.shape[-1], "cond" if text is COND else "uncond"))
        if inputs is not None and text is COND:
            inputs.append(latents.clone())
        return 0.3 * latents + 0.1 * text.mean() + 0.001 * timestep.float().view(-1, 1, 1, 1, 1)

    denoiser = ChunkDenoiser(sampler, scheduler_config_for("dmd"), (1, 2, 2))
    noise = torch.randn((1, 4, 2, 16, 16), generator=torch.Generator().manual_seed(0))
    latents = denoiser.denoise(noise, predict, TextConditioning(COND, UNCOND), torch.Generator().manual_seed(1),
                               is_first_chunk=False)
    return latents, calls


def dmd(**values) -> SamplerConfig:
    sampler = SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1), guidance_scale=3.0, **values)
    sampler.validate()
    return sampler


def test_only_the_coarse_stages_run_the_unconditional_forward() -> None:
    _, calls = run(dmd(guidance_coarse_stages=2))
    # widths 4, 8, 16 are stages 0, 1, 2 of a 16-wide latent
    assert calls == [(4, "cond"), (4, "uncond"), (8, "cond"), (8, "uncond"), (16, "cond")]


@pytest.mark.parametrize("coarse", [3, 5])
def test_a_count_of_every_stage_or_more_is_the_same_as_none(coarse: int) -> None:
    # More than the pyramid has is allowed: a preset's count must survive --steps or sampler.kind changing the stages.
    every, every_calls = run(dmd(guidance_coarse_stages=coarse))
    default, default_calls = run(dmd())
    assert every_calls == default_calls and len(default_calls) == 6
    assert torch.equal(every, default)
    assert not dmd(guidance_coarse_stages=coarse).partly_guided and dmd(guidance_coarse_stages=2).partly_guided


def test_unguided_stages_run_as_without_guidance() -> None:
    coarse_inputs: list[torch.Tensor] = []
    guided_inputs: list[torch.Tensor] = []
    coarse_only, _ = run(dmd(guidance_coarse_stages=1), coarse_inputs)
    guided, _ = run(dmd(), guided_inputs)
    plain_inputs: list[torch.Tensor] = []
    plain, plain_calls = run(SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1)), plain_inputs)
    assert len(plain_calls) == 3
    # stage 0 is guided in both guided runs, so stage 1 starts from the same latents in both ...
    assert torch.equal(coarse_inputs[1], guided_inputs[1]) and not torch.equal(coarse_inputs[1], plain_inputs[1])
    # ... and from there the coarse-only run goes on unguided, so the results differ
    assert not torch.allclose(coarse_only, guided) and not torch.allclose(coarse_only, plain)


def test_coarse_stages_without_guidance_run_one_forward_per_step() -> None:
    sampler = SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1), guidance_scale=1.0, guidance_coarse_stages=2)
    _, calls = run(sampler)
    assert [kind for _, kind in calls] == ["cond"] * 3
    assert not sampler.partly_guided


def test_a_flat_sampler_with_a_coarse_count_is_guided() -> None:
    flat = SamplerConfig(kind="flow_unipc", steps=(4,), guidance_scale=3.0, guidance_coarse_stages=2)
    flat.validate()
    assert flat.guided(0) and not flat.partly_guided


@pytest.mark.parametrize("coarse", [0, -1])
def test_a_count_below_one_is_a_config_error(coarse: int) -> None:
    with pytest.raises(ConfigError, match="sampler.guidance_coarse_stages"):
        SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1), guidance_scale=2.0, guidance_coarse_stages=coarse).validate()

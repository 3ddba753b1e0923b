"""sampler.guidance_stages: classifier-free guidance in some pyramid stages only."""

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


def test_only_the_listed_stages_run_the_unconditional_forward() -> None:
    _, calls = run(dmd(guidance_stages=(0, 1)))
    # widths 4, 8, 16 are stages 0, 1, 2 of a 16-wide latent
    assert calls == [(4, "cond"), (4, "uncond"), (8, "cond"), (8, "uncond"), (16, "cond")]


def test_listing_every_stage_is_the_same_as_listing_none() -> None:
    every, every_calls = run(dmd(guidance_stages=(0, 1, 2)))
    default, default_calls = run(dmd())
    assert every_calls == default_calls and len(default_calls) == 6
    assert torch.equal(every, default)


def test_stages_before_the_guided_one_run_as_without_guidance() -> None:
    last_only_inputs: list[torch.Tensor] = []
    plain_inputs: list[torch.Tensor] = []
    last_only, _ = run(dmd(guidance_stages=(2,)), last_only_inputs)
    plain, plain_calls = run(SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1)), plain_inputs)
    assert len(plain_calls) == 3
    # stages 0 and 1 see the same latents as an unguided run; stage 2 starts from the same point too ...
    assert all(torch.equal(a, b) for a, b in zip(last_only_inputs, plain_inputs, strict=True))
    # ... and only its guided velocity makes the result differ
    assert not torch.allclose(last_only, plain)


def test_guidance_stages_without_guidance_run_one_forward_per_step() -> None:
    _, calls = run(SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1), guidance_scale=1.0, guidance_stages=(0,)))
    assert [kind for _, kind in calls] == ["cond"] * 3


@pytest.mark.parametrize("stages", [(3,), (-1,), (0, 0)])
def test_bad_guidance_stages_are_config_errors(stages: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match="sampler.guidance_stages"):
        SamplerConfig(kind="pyramid_dmd", steps=(1, 1, 1), guidance_scale=2.0, guidance_stages=stages).validate()

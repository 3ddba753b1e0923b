"""The paper's latent drift rule, its history-noise remedy, and DriftConfig validation."""

from __future__ import annotations

import pytest
import torch

from helios_core.drift import DriftConfig, DriftDetector, LatentDriftRule, add_history_noise
from helios_core.errors import ConfigError

LATENT_SHAPE = (1, 16, 9, 24, 40)  # one chunk: 9 latent frames, 16 channels; 8640 values per channel


def latent_chunk(seed: int, mean: float = 0.0, std: float = 1.0, shape: tuple[int, ...] = LATENT_SHAPE) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(shape, generator=generator)


def test_a_stationary_latent_stream_never_flags() -> None:
    detector = DriftDetector(DriftConfig(), fps=24.0)
    for chunk in range(30):
        detector.observe_chunk(chunk, None, latent_chunk(chunk))
        assert detector.latent_drift_flag is False
    assert detector.warnings == []


def test_a_mean_and_variance_jump_flags_on_the_jump_chunk_and_warns_once() -> None:
    detector = DriftDetector(DriftConfig(), fps=24.0, chunk_pixel_frames=33)
    flags = []
    for chunk in range(18):
        jumped = chunk >= 6
        latents = latent_chunk(chunk, mean=0.1 if jumped else 0.0, std=1.15 if jumped else 1.0)
        detector.observe_chunk(chunk, None, latents)
        flags.append(detector.latent_drift_flag)
    assert flags[:6] == [False] * 6
    assert flags[6] is True  # the engine applies the remedy on this chunk
    assert flags[7] is True  # and keeps applying it while the stream is still far from its running average
    assert flags[-1] is False  # the EMA has absorbed the new level (0.9 ** 9 * 0.36 < 0.15)
    latent_warnings = [warning for warning in detector.warnings if warning.kind == "latent"]
    assert [warning.chunk_index for warning in latent_warnings] == [6]
    assert latent_warnings[0].second == pytest.approx(6 * 33 / 24.0)
    assert latent_warnings[0].value > 0.15 and latent_warnings[0].threshold == 0.15


def test_both_distances_must_pass_the_threshold() -> None:
    mean_only = LatentDriftRule()
    var_only = LatentDriftRule()
    for chunk in range(5):
        mean_only.observe(latent_chunk(chunk))
        var_only.observe(latent_chunk(chunk))
    mean_jump = mean_only.observe(latent_chunk(99, mean=0.2))
    var_jump = var_only.observe(latent_chunk(99, std=1.3))
    assert mean_jump.mean_distance > 0.15 and not mean_jump.flagged
    assert var_jump.var_distance > 0.15 and not var_jump.flagged


def test_distances_follow_the_official_order_ema_update_then_compare() -> None:
    rule = LatentDriftRule()
    first, second = latent_chunk(1, shape=(2, 16, 3, 8, 8)), latent_chunk(2, mean=0.3, shape=(2, 16, 3, 8, 8))
    rule.observe(first)
    measure = rule.observe(second)
    # EMA after the update = 0.9 * stats(first) + 0.1 * stats(second), so the distance is 0.9 * |second - first|.
    mean_gap = second.mean(dim=(2, 3, 4)) - first.mean(dim=(2, 3, 4))
    var_gap = second.var(dim=(2, 3, 4)) - first.var(dim=(2, 3, 4))
    assert measure.mean_distance == pytest.approx(float((0.9 * mean_gap).norm(dim=-1).mean()), rel=1e-5)
    assert measure.var_distance == pytest.approx(float((0.9 * var_gap).norm(dim=-1).mean()), rel=1e-5)


def test_history_noise_is_additive_gaussian_of_the_given_strength() -> None:
    latents = latent_chunk(0, mean=0.5, std=2.0)
    original = latents.clone()
    noisy = add_history_noise(latents, 0.1, torch.Generator().manual_seed(7))
    assert torch.equal(latents, original)  # input untouched
    added = noisy - latents
    assert float(added.mean()) == pytest.approx(0.0, abs=0.002)
    assert float(added.std()) == pytest.approx(0.1, rel=0.02)
    # Additive: the content is not shrunk by (1 - sigma), so the per-channel means stay put.
    # (torch.equal and plain maxima rather than torch.testing, whose first call costs ~2 s of lazy imports)
    assert float((noisy.mean(dim=(2, 3, 4)) - latents.mean(dim=(2, 3, 4))).abs().max()) < 0.005
    again = add_history_noise(latents, 0.1, torch.Generator().manual_seed(7))
    assert torch.equal(noisy, again)
    assert torch.equal(add_history_noise(latents, 0.0, None), latents)


def test_history_noise_keeps_dtype_and_refuses_negative_strength() -> None:
    latents = latent_chunk(3).to(torch.bfloat16)
    noisy = add_history_noise(latents, 0.1, None)
    assert noisy.dtype == torch.bfloat16 and noisy.shape == latents.shape
    assert not torch.equal(noisy, latents)
    with pytest.raises(ValueError):
        add_history_noise(latents, -0.1, None)


@pytest.mark.parametrize(
    "field, value",
    [("latent_mean_threshold", 0.0), ("latent_ema_rho_mean", 1.0), ("analysis_width", -5), ("rewarn_growth", 1.0)],
)
def test_config_rejects_out_of_range_values(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        DriftConfig(**{field: value})


def test_config_defaults_are_the_papers() -> None:
    config = DriftConfig()
    assert (config.latent_ema_rho_mean, config.latent_ema_rho_var) == (0.9, 0.9)
    assert (config.latent_mean_threshold, config.latent_var_threshold) == (0.15, 0.15)
    assert config.latent_noise_strength == 0.1

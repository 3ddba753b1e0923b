"""Training presets load, `--set`-style overrides are typed, and mistakes are one-line ConfigErrors."""

from __future__ import annotations

import pytest

from helios_core.errors import ConfigError
from helios_core.training import TrainConfig, load_train_config


@pytest.mark.parametrize("stage", ["base", "mid", "distilled"])
def test_each_stage_preset_loads_and_round_trips(stage: str):
    config = load_train_config(stage)
    assert config.stage == stage
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_presets_follow_the_reference_recipe():
    base, mid, distilled = (load_train_config(s) for s in ("base", "mid", "distilled"))
    assert (base.lora.rank, base.optim.lr, base.timestep.sampling) == (128, 5e-5, "logit_normal")
    assert (mid.lora.rank, mid.optim.warmup_steps, mid.timestep.sampling) == (256, 1000, "uniform")
    assert mid.pyramid.sample_ratios == (1.0, 2.0, 1.0)
    assert distilled.optim.betas == (0.0, 0.999) and distilled.ema.enabled and distilled.distill.method == "ode"


def test_overrides_are_typed():
    config = load_train_config("base", {"optim.lr": 1, "lora.target_modules": ["to_q"], "corrupt.enabled": False})
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.lora.target_modules == ("to_q",) and not config.corrupt.enabled


@pytest.mark.parametrize(("overrides", "message"), [
    ({"optim.learning_rate": 1e-4}, "unknown training config key 'optim.learning_rate'"),
    ({"lora.rank": "big"}, "expects an integer"),
    ({"drop.t2v_prob": 1.5}, "must be in \\[0, 1\\]"),
    ({"stage": "final"}, "must be one of"),
])
def test_bad_overrides_fail_with_the_key(overrides: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        load_train_config("base", overrides)


def test_unknown_stage_names_the_choices():
    with pytest.raises(ConfigError, match="base, mid, distilled"):
        load_train_config("final")

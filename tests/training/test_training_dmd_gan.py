"""DMD's GAN heads (distill.gan): hook placement, the losses and their gradients, learning, and exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helios_core.errors import ConfigError
from helios_core.training import load_train_config, train
from helios_core.training.checkpoint import checkpoint_dirs, load_extra_state
from helios_core.training.dataset import SampleOrder
from helios_core.training.model_setup import trainable_parameters
from helios_core.training.stages.dmd import CRITIC_ADAPTER, GENERATOR_ADAPTER, DmdStage, active_adapter, \
    adapter_parameters
from helios_core.training.stages.dmd_gan import cached_gradient_loss, gan_block_indices

def _batch(parts, index: int = 0):
    return SampleOrder(len(parts.dataset), 0).batch(parts.dataset, index, 1)


def test_block_indices_spread_over_the_depth_as_the_reference():
    assert gan_block_indices(40) == (5, 15, 25, 35)  # the 14B model: the reference's blocks
    assert gan_block_indices(20) == (2, 7, 12, 17) and gan_block_indices(2) == (0, 1) and gan_block_indices(1) == (0,)
    for layers in range(1, 65):
        blocks = gan_block_indices(layers)
        assert list(blocks) == sorted(set(blocks)) and 0 <= blocks[0] and blocks[-1] < layers
        assert len(blocks) == min(4, layers)


def test_gan_is_off_by_default_and_only_for_dmd():
    assert not load_train_config("distilled").distill.gan.enabled  # the reference's stage_3_post: no GAN
    config = load_train_config("distilled", {"distill.method": "dmd", "distill.gan.enabled": True,
                                             "distill.gan.generator_weight": 0.1})
    assert config.distill.gan.generator_weight == 0.1 and config.distill.gan.critic_weight == 0.01
    with pytest.raises(ConfigError, match="distill.method=dmd"):
        load_train_config("distilled", {"distill.gan.enabled": True})
    with pytest.raises(ConfigError, match="distill.gan"):
        load_train_config("distilled", {"distill.method": "dmd", "distill.gan.critic_weight": -1})
    gan = load_train_config("distilled", {"distill.method": "dmd", "distill.gan.enabled": True}).distill.gan
    assert gan.final_head and gan.crop_fraction == 0.5  # the reference's GAN version: output head, 50% crop
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match=r"distill.gan.crop_fraction must be in \(0, 1\]"):
            load_train_config("distilled", {"distill.method": "dmd", "distill.gan.crop_fraction": bad})
    for key, bad in (("crop_fraction", float("nan")), ("crop_fraction", "half"), ("final_head", "maybe")):
        with pytest.raises(ConfigError, match=f"distill.gan.{key}"):  # the loader's type check, one line
            load_train_config("distilled", {"distill.method": "dmd", f"distill.gan.{key}": bad})


def test_cached_gradient_surrogate_has_the_value_and_the_gradient():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    value = (x.detach() ** 3).sum()
    surrogate = cached_gradient_loss(x, 3 * x.detach() ** 2, value)
    surrogate.backward()
    assert float(surrogate) == float(value) and torch.equal(x.grad, 3 * x.detach() ** 2)


def test_gan_losses_reach_the_heads_critic_and_generator_only_where_they_should(dmd_gan_parts):
    parts = dmd_gan_parts()
    model, stage, batch = parts.transformer, parts.stage, _batch(parts)
    disc = stage.gan.discriminator
    heads = dict(disc.named_parameters())
    assert disc.block_indices == (0, 1) and not set(heads) & set(dict(model.named_parameters()))
    critic_names = set(adapter_parameters(model, CRITIC_ADAPTER))
    assert set(stage.critic_params) == critic_names | {f"gan_heads.{n}" for n in heads}

    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        sample = stage.generate(model, batch, rng, with_grad=False)
    with disc.capture(sample.shape) as features, torch.no_grad():
        stage.layout.forward(model, sample, torch.full((1,), 500.0), batch.text, batch.history, batch.anchor)
    assert [tuple(t.shape) for t in features.tokens] == [(1, 9 * 4 * 4, 64)] * 2  # 9 x (8/2) x (8/2) noisy tokens

    stage._gan_metrics = []
    with active_adapter(model, CRITIC_ADAPTER):
        loss = stage.critic_loss(model, batch, sample, rng)
        loss.backward()
    metrics = stage._gan_metrics[0]
    assert math.isfinite(metrics["gan_critic_loss"]) and metrics["gan_critic_loss"] > 0 and metrics["gan_r1"] >= 0
    assert all(p.grad is not None and float(p.grad.abs().max()) > 0 for p in heads.values())
    critic = adapter_parameters(model, CRITIC_ADAPTER)
    assert any(float(p.grad.abs().max()) > 0 for n, p in critic.items() if "lora_B" in n)  # the critic trains too
    stage.critic_optimizer.zero_grad(set_to_none=True)

    loss = stage.loss(model, batch, rng)
    assert math.isfinite(float(loss)) and stage.last_metrics["gan_generator_loss"] > 0
    loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == set(adapter_parameters(model, GENERATOR_ADAPTER))  # the critic stays out (cached gradient)
    assert all(p.grad is None for p in heads.values())
    assert set(trainable_parameters(model)) == with_grad


def test_heads_learn_to_tell_real_from_generated_on_a_fixed_batch(dmd_gan_parts):
    # Low noise levels (at t ~ 900 real and generated inputs are both mostly noise) and a linear head on the pooled
    # block features (the conv + GroupNorm layers learn too, only more slowly at this toy width).
    parts = dmd_gan_parts(**{
        "distill.critic_lr": 1e-2, "distill.gan.r1_weight": 0.0, "distill.critic_steps_per_generator_step": 10,
        "distill.gan.head_layers": 0, "distill.dmd_timestep_shift": 1.0, "distill.dmd_max_timestep": 300.0})
    model, stage, batch = parts.transformer, parts.stage, _batch(parts, 1)
    with torch.no_grad():
        sample = stage.generate(model, batch, torch.Generator().manual_seed(1), with_grad=False)

    def fixed_gan_loss() -> float:  # the same noise levels and noises every time
        stage._gan_metrics = []
        with torch.no_grad(), active_adapter(model, CRITIC_ADAPTER):
            for seed in range(3):
                stage.critic_loss(model, batch, sample, torch.Generator().manual_seed(seed))
        return sum(m["gan_critic_loss"] for m in stage._gan_metrics) / 3

    before = fixed_gan_loss()
    stage.train_critic(model, lambda: batch, torch.Generator().manual_seed(0), 0)
    after = fixed_gan_loss()
    assert math.isfinite(stage.last_metrics["gan_critic_loss"])
    assert after < 0.7 * before, (before, after)  # from about 2 log 2 (chance): the heads separate the two



def test_dmd_gan_run_resumes_bit_for_bit_heads_included(tiny_model_dir: Path, prepared_dir: Path, tmp_path: Path,
                                                        killed_then_resumed, dmd_gan_settings, dmd_gan_parts):
    # Gradient checkpointing on: block recomputation must see the adapter (critic / generator) of its forward.
    overrides = {**dmd_gan_settings, "loop.max_steps": 3, "loop.checkpoint_every": 2, "distill.gan.start_step": 1,
                 "loop.gradient_checkpointing": True}
    config = load_train_config("distilled", overrides)
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    whole = train(config, out_dir=tmp_path / "whole", **paths)

    resumed = killed_then_resumed(config, tmp_path / "split", 2, **paths)
    assert resumed.steps_done == 1 and resumed.losses == whole.losses[2:]
    logs = {run: [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
            for run in ("whole", "split")}
    assert len(logs["split"]) == len(logs["whole"]) == 3
    assert logs["split"] == [{**e, "seconds": s["seconds"]} for e, s in zip(logs["whole"], logs["split"])]
    assert "gan_critic_loss" not in logs["whole"][0]  # start_step 1: the first step is plain DMD
    assert all(math.isfinite(e["gan_generator_loss"]) and math.isfinite(e["gan_r1"]) for e in logs["whole"][1:])
    last_whole, last_split = checkpoint_dirs(tmp_path / "whole")[-1], checkpoint_dirs(tmp_path / "split")[-1]
    for name in ("trainable", "critic", "critic_optimizer", "optimizer"):
        assert (last_split / f"{name}.safetensors").read_bytes() == (last_whole / f"{name}.safetensors").read_bytes()
    saved = load_extra_state(last_whole, DmdStage.extra_state_names)
    heads = {n: t for n, t in saved["critic"].items() if n.startswith("gan_heads.")}
    assert heads and any(n.startswith("gan_heads.") for n in saved["critic_optimizer"])
    assert any(n.startswith("gan_heads.final_head.") for n in heads)  # the output head travels and resumes too
    fresh = dmd_gan_parts().stage.gan.named_parameters()  # the seeded initial heads
    assert set(heads) == set(fresh) and any(not torch.equal(heads[n], fresh[n].detach()) for n in heads)


def test_gradient_checkpointing_gives_the_same_gan_gradients(dmd_gan_parts):
    """Checkpointed blocks recompute in backward; the critic's gradients and the cached gradient of the generator's
    adversarial term must be those of a plain backward (a recomputation under the wrong adapter would change them)."""
    parts = dmd_gan_parts(**{"loop.gradient_checkpointing": True})
    model, stage, batch = parts.transformer, parts.stage, _batch(parts, 2)
    with torch.no_grad():  # both adapters start as zero-B LoRA (= the base): make them differ, or no mix-up shows
        rng = torch.Generator().manual_seed(7)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.2 * torch.randn(param.shape, generator=rng))
        sample = stage.generate(model, batch, torch.Generator().manual_seed(4), with_grad=False)
    noise = torch.randn(sample.shape, generator=torch.Generator().manual_seed(5))
    timestep = torch.full((1,), 600.0)

    def gradients() -> dict[str, torch.Tensor]:
        with active_adapter(model, CRITIC_ADAPTER):
            stage.critic_loss(model, batch, sample, torch.Generator().manual_seed(6)).backward()
            found = {n: p.grad.clone() for n, p in stage.critic_params.items()}
            stage.critic_optimizer.zero_grad(set_to_none=True)
            leaf = sample.clone().requires_grad_(True)
            term, _ = stage.gan.generator_term(stage._scorer(model, batch), leaf, noise, timestep,
                                               torch.full((1, 1, 1, 1, 1), 0.6), torch.Generator().manual_seed(8))
        term.backward()  # outside the critic context, as the trainer's backward is
        model.zero_grad(set_to_none=True)
        return {**found, "sample": leaf.grad}

    checkpointed = gradients()
    model.disable_gradient_checkpointing()
    plain = gradients()
    assert checkpointed.keys() == plain.keys() and float(plain["sample"].abs().max()) > 0
    for name, value in plain.items():
        torch.testing.assert_close(checkpointed[name], value, rtol=1e-5, atol=1e-8)

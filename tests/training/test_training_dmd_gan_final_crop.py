"""DMD GAN: the head on the critic's output (distill.gan.final_head) and the random spatial crop of the heads' inputs
(distill.gan.crop_fraction)."""

from __future__ import annotations

import math

import torch

from helios_core.training.dataset import SampleOrder
from helios_core.training.stages.dmd import CRITIC_ADAPTER, active_adapter
from helios_core.training.stages.dmd_gan_crop import crop_size, crop_tokens, draw_windows


def _stage(parts):
    return parts.transformer, parts.stage, SampleOrder(len(parts.dataset), 0).batch(parts.dataset, 0, 1)


# ---- the crop
def test_crop_size_is_half_rounded_up_and_at_least_one_token():
    assert [crop_size(n, 0.5) for n in (1, 2, 3, 4, 5, 40)] == [1, 1, 2, 2, 3, 20]  # 24x40 (384x640) -> 12x20
    assert crop_size(7, 0.01) == 1 and crop_size(7, 1.0) == 7 and crop_size(4, 0.25) == 1


def test_crop_cuts_each_sample_to_its_own_window_on_the_token_grid():
    grid = (3, 6, 8)  # (T, h, w)
    tokens = torch.arange(2 * math.prod(grid) * 2, dtype=torch.float32).reshape(2, math.prod(grid), 2)
    windows = draw_windows(grid, 2, 0.5, torch.Generator().manual_seed(0))
    assert windows is not None and windows.size == (3, 4) and windows.offsets.shape == (2, 2)
    cropped, cropped_grid = crop_tokens(tokens, grid, windows)
    assert cropped_grid == (3, 3, 4) and cropped.shape == (2, 3 * 3 * 4, 2)
    on_grid = tokens.reshape(2, *grid, 2)
    for b, (top, left) in enumerate(windows.offsets.tolist()):
        assert 0 <= top <= 6 - 3 and 0 <= left <= 8 - 4
        expected = on_grid[b, :, top:top + 3, left:left + 4].reshape(-1, 2)  # all frames, the window's rows/columns
        assert torch.equal(cropped[b], expected)


def test_windows_follow_the_generator_and_a_full_crop_is_the_identity():
    grid = (2, 16, 16)
    rng = torch.Generator().manual_seed(3)
    draws = [draw_windows(grid, 4, 0.5, rng).offsets for _ in range(3)]  # successive calls: new generator states
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[1], draws[2])
    again = torch.Generator().manual_seed(3)
    assert torch.equal(draw_windows(grid, 4, 0.5, again).offsets, draws[0])  # same state, same windows (resume)

    rng = torch.Generator().manual_seed(5)
    state = rng.get_state()
    assert draw_windows(grid, 4, 1.0, rng) is None and torch.equal(rng.get_state(), state)  # nothing drawn
    tokens = torch.randn(4, math.prod(grid), 3)
    same, same_grid = crop_tokens(tokens, grid, None)
    assert same is tokens and same_grid == grid


# ---- the output head
def test_final_head_reads_the_critic_prediction_and_trains_with_the_critic(dmd_gan_parts):
    model, stage, batch = _stage(dmd_gan_parts())
    disc = stage.gan.discriminator
    assert disc.final_head is not None and disc.num_heads == len(disc.block_indices) + 1
    final = {f"gan_heads.final_head.{n}": p for n, p in disc.final_head.named_parameters()}
    assert final and set(final) <= set(stage.critic_params)  # same optimizer, clip and checkpoint as the critic

    # What the head reads is the transformer's output itself: unpatchified, the captured tokens are the velocity.
    noisy = torch.randn(batch.target.shape, generator=torch.Generator().manual_seed(1))
    with disc.capture(noisy.shape) as features, torch.no_grad(), active_adapter(model, CRITIC_ADAPTER):
        velocity = stage.layout.forward(model, noisy, torch.full((1,), 500.0), batch.text, batch.history,
                                        batch.anchor)
    (t, h, w), (pt, ph, pw) = features.grid, disc.patch_size
    channels = velocity.shape[1]
    assert features.final.shape == (1, t * h * w, channels * pt * ph * pw)
    unpatchified = features.final.reshape(1, t, h, w, pt, ph, pw, channels).permute(0, 7, 1, 4, 2, 5, 3, 6)
    torch.testing.assert_close(unpatchified.reshape(velocity.shape), velocity, rtol=0, atol=0)
    logits = disc.logits(features, disc.draw_windows(features, torch.Generator().manual_seed(2)))
    assert logits.shape == (disc.num_heads, 1) and torch.isfinite(logits).all()

    before = {n: p.detach().clone() for n, p in final.items()}
    stage.train_critic(model, lambda: batch, torch.Generator().manual_seed(0), 0)
    assert math.isfinite(stage.last_metrics["gan_critic_loss"])
    assert all(not torch.equal(before[n], p) for n, p in final.items())  # every tensor of the head moved


def test_final_head_off_leaves_only_the_block_heads(dmd_gan_parts):
    _, on, _ = _stage(dmd_gan_parts())
    model, stage, batch = _stage(dmd_gan_parts(**{"distill.gan.final_head": False}))
    disc = stage.gan.discriminator
    assert disc.final_head is None and disc.num_heads == len(disc.block_indices) == len(disc.heads)
    assert not any("final_head" in n for n in stage.critic_params)
    only_with_it = {n for n in on.critic_params if "final_head" in n}
    assert only_with_it and set(on.critic_params) - set(stage.critic_params) == only_with_it
    for name, param in stage.gan.named_parameters().items():  # the block heads start the same with or without it
        torch.testing.assert_close(param, on.gan.named_parameters()[name], rtol=0, atol=0)
    with disc.capture(batch.target.shape) as features, torch.no_grad():
        stage.layout.forward(model, batch.target, torch.full((1,), 500.0), batch.text, batch.history, batch.anchor)
    assert features.final is None and disc.logits(features, None).shape == (len(disc.block_indices), 1)


def test_r1_compares_the_same_window_of_the_real_and_perturbed_forwards(dmd_gan_parts):
    # r1_sigma 0: the perturbed input is the real one, so R1 is exactly 0 only if both heads' inputs share a window.
    model, stage, batch = _stage(dmd_gan_parts(**{"distill.gan.r1_sigma": 0.0}))
    sample = torch.randn(batch.target.shape, generator=torch.Generator().manual_seed(3))
    for seed in range(3):
        stage._gan_metrics = []
        with torch.no_grad(), active_adapter(model, CRITIC_ADAPTER):
            stage.critic_loss(model, batch, sample, torch.Generator().manual_seed(seed))
        assert stage._gan_metrics[0]["gan_r1"] == 0.0 and stage._gan_metrics[0]["gan_critic_loss"] > 0

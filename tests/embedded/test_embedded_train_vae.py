"""VAE training at toy size on the CPU: the loss falls, runs repeat exactly, and the saved folder is right."""

import itertools
import json

import pytest
import torch
from diffusers import AutoencoderKLWan

from helios_core.embedded.config import embedded_vae_config
from helios_core.embedded.train_vae import (
    VaeTrainSettings,
    _parse,
    cudnn_modes,
    main,
    save_trained_vae,
    train_vae,
)
from helios_core.embedded.vae_measure import latent_statistics, reconstruction_psnr
from helios_core.embedded.world_clips import world_pixels
from helios_core.errors import ConfigError

TOY_VAE = {**embedded_vae_config(), "base_dim": 8, "decoder_base_dim": 8}


def toy_settings(**values) -> VaeTrainSettings:
    base = dict(steps=20, seed=0, batch_size=2, height=16, width=32, clip_frames=(5, 9), learning_rate=3e-3,
                warmup_steps=2, stats_clips=3, eval_clips=2, measure_frames=5, measure_batch=2, device="cpu",
                vae_config=TOY_VAE)
    return VaeTrainSettings(**{**base, **values})


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(2)
    return train_vae(toy_settings())


def test_loss_falls(trained):
    first, last = trained.losses[:3], trained.losses[-3:]
    assert sum(last) / 3 < 0.8 * sum(first) / 3


def test_same_seed_same_weights_other_seed_not(trained):
    again = train_vae(toy_settings())
    assert again.losses == trained.losses
    for (name, p), q in zip(trained.vae.state_dict().items(), again.vae.state_dict().values()):
        assert torch.equal(p, q), name
    other = train_vae(toy_settings(seed=1, steps=2))
    assert other.losses[:2] != trained.losses[:2]


def test_saved_folder_reloads_with_the_measured_latent_statistics(trained, tmp_path):
    settings = toy_settings()
    save_trained_vae(trained, settings, tmp_path / "vae")
    reloaded = AutoencoderKLWan.from_pretrained(tmp_path / "vae").eval()
    for p, q in zip(trained.vae.state_dict().values(), reloaded.state_dict().values()):
        assert torch.equal(p, q) and q.dtype == torch.float32
    # Recompute the statistics on the same stats clips: they must be what the config holds.
    clips = [world_pixels(0, "stats", range(0, 2), 5, 16, 32), world_pixels(0, "stats", range(2, 3), 5, 16, 32)]
    mean, std = latent_statistics(reloaded, clips, seed=0)
    assert reloaded.config.latents_mean == pytest.approx(mean, abs=1e-6)
    assert reloaded.config.latents_std == pytest.approx(std, abs=1e-6)
    assert max(abs(m) for m in mean) > 1e-3 and min(std) < 0.999 * max(std)  # measured, not the 0/1 placeholders
    log = json.loads((tmp_path / "vae" / "train_log.json").read_text())
    assert log["heldout_psnr_db"] == pytest.approx(trained.heldout_psnr)
    assert len(log["losses_every_10"]) == 2  # 20 steps, one loss in ten


def test_training_continues_from_a_saved_folder(trained, tmp_path):
    save_trained_vae(trained, toy_settings(), tmp_path / "start")
    # One step at a tiny rate: the weights move, but only a little from the saved ones (not a fresh random init).
    resumed = train_vae(toy_settings(steps=1, learning_rate=1e-6, warmup_steps=1, crop=(8, 16),
                                     init_from=str(tmp_path / "start")))
    start, after = trained.vae.state_dict(), resumed.vae.state_dict()
    moved = max(float((after[k] - start[k]).abs().max()) for k in start)
    assert 0 < moved < 1e-4
    save_trained_vae(resumed, toy_settings(), tmp_path / "resumed")
    assert "_name_or_path" not in json.loads((tmp_path / "resumed" / "config.json").read_text())


def test_statistics_normalise_the_latents(trained):
    pixels = world_pixels(0, "stats", range(3), 5, 16, 32)
    mean, std = latent_statistics(trained.vae, [pixels], seed=0)
    with torch.no_grad():
        z = trained.vae.encode(pixels).latent_dist.sample(generator=torch.Generator().manual_seed(0))
    normalised = (z - torch.tensor(mean).view(1, -1, 1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1, 1)
    per_channel = normalised.transpose(0, 1).reshape(16, -1)
    torch.testing.assert_close(per_channel.mean(dim=1), torch.zeros(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(dim=1, unbiased=False), torch.ones(16), atol=1e-4, rtol=0)


def test_psnr_is_that_of_the_uint8_reconstruction(trained):
    pixels = world_pixels(0, "eval", range(2), 5, 16, 32)
    with torch.no_grad():
        decoded = trained.vae.decode(trained.vae.encode(pixels).latent_dist.mean).sample
    levels = lambda x: ((x.double() * 0.5 + 0.5).clamp(0, 1) * 255).round()  # noqa: E731
    mse = (levels(decoded) - levels(pixels)).square().mean()
    assert reconstruction_psnr(trained.vae, [pixels]) == pytest.approx(float(10 * torch.log10(255**2 / mse)))
    assert trained.heldout_psnr == pytest.approx(reconstruction_psnr(trained.vae, [pixels]))


def test_command_line_trains_and_saves(tmp_path, capsys):
    overrides = json.dumps({"base_dim": 4, "decoder_base_dim": 4})
    args = ["--out", str(tmp_path / "cli"), "--steps", "2", "--height", "16", "--width", "16", "--batch-size", "1",
            "--clip-frames", "5", "--stats-clips", "1", "--eval-clips", "1", "--device", "cpu",
            "--vae-overrides", overrides]
    assert main(args) == 0
    assert "held-out PSNR" in capsys.readouterr().out
    assert AutoencoderKLWan.from_pretrained(tmp_path / "cli").config.base_dim == 4
    with pytest.raises(ConfigError, match="unknown key"):
        main([*args[:-1], '{"width": 3}'])
    with pytest.raises(ConfigError, match="multiples of 8"):
        main([*args[:4], "--height", "12"])


def test_fit_seconds_fixes_the_length_in_steps_and_completes_the_schedule(tmp_path):
    """A fitted run stops at the step count it chose (logged for a clock-free rerun) with the cosine at its end,
    where a run stopped by --max-train-seconds would stop mid-schedule at a high learning rate."""
    settings = toy_settings(steps=100_000, fit_seconds=3.0, warmup_steps=60, stats_clips=2, eval_clips=1)
    ticks = itertools.count()
    result = train_vae(settings, clock=lambda: next(ticks) * 0.01)  # a fake clock: every reading 10 ms later
    # About 2 clock readings a step at 10 fake ms each: some 50 steps a fake second, about 144 in 3 fake seconds.
    assert 100 < result.planned_steps < 200
    assert len(result.losses) == result.planned_steps
    assert result.final_lr == pytest.approx(0.1 * settings.learning_rate, rel=1e-6)
    save_trained_vae(result, settings, tmp_path / "vae")
    log = json.loads((tmp_path / "vae" / "train_log.json").read_text())
    assert log["steps_planned"] == result.planned_steps == log["steps_done"]
    # The logged count repeats the run's schedule without a clock: same losses, bit for bit, on the CPU.
    again = train_vae(toy_settings(steps=result.planned_steps, warmup_steps=60, stats_clips=2, eval_clips=1))
    assert again.losses == result.losses
    with pytest.raises(ConfigError, match="--fit-seconds needs --warmup-steps >= 60"):
        train_vae(toy_settings(fit_seconds=1.5, warmup_steps=59))


def test_cudnn_benchmark_is_opt_in_and_trades_determinism():
    """CUDA runs are deterministic unless --cudnn-benchmark asks for the fastest (nondeterministic) algorithms."""
    default, _ = _parse(["--out", "x", "--steps", "1"])
    fast, _ = _parse(["--out", "x", "--steps", "1", "--cudnn-benchmark"])
    assert not default.cudnn_benchmark and fast.cudnn_benchmark
    assert cudnn_modes(default) == (True, False)  # (deterministic, benchmark)
    assert cudnn_modes(fast) == (False, True)


def test_object_weight_makes_an_error_on_an_object_count_one_plus_w_times():
    """The L1 terms are weighted means: the same error costs (1 + W) times more on an object's pixels than off them."""
    from helios_core.embedded.train_vae import _loss

    settings = toy_settings(gradient_weight=0.0, kl_weight=0.0)
    target = torch.zeros(1, 3, 5, 8, 8)
    weights = torch.ones(1, 1, 5, 8, 8)
    weights[..., :4, :] = 1.0 + 9.0  # object_weight 9 on the top half
    moments = torch.zeros(1, 4, 2, 1, 1)
    on_object, off_object = target.clone(), target.clone()
    on_object[..., 1, 1] = 0.5
    off_object[..., 6, 6] = 0.5
    loss_on, _ = _loss(on_object, target, moments, moments, settings, weights)
    loss_off, _ = _loss(off_object, target, moments, moments, settings, weights)
    assert torch.allclose(loss_on, 10.0 * loss_off)
    plain, _ = _loss(on_object, target, moments, moments, settings)
    assert torch.allclose(plain, on_object.abs().mean())  # no weights: the plain mean, as before
    # The finite-difference term weighs a difference by the larger weight of its two pixels: an object's edge counts.
    edge_settings = toy_settings(gradient_weight=1.0, kl_weight=0.0)
    edge_on, _ = _loss(on_object, target, moments, moments, edge_settings, weights)
    edge_off, _ = _loss(off_object, target, moments, moments, edge_settings, weights)
    assert edge_on > edge_off


def test_training_with_object_weight_weighs_object_pixels_and_learns(monkeypatch):
    import helios_core.embedded.train_vae as module

    seen = []
    real_loss = module._loss

    def spy(recon, target, mean, logvar, settings, weights=None):
        seen.append(None if weights is None else sorted(torch.unique(weights).tolist()))
        return real_loss(recon, target, mean, logvar, settings, weights)

    monkeypatch.setattr(module, "_loss", spy)
    result = train_vae(toy_settings(steps=12, object_weight=4.0, height=32, width=64))
    assert result.losses[-1] < result.losses[0]
    assert all(values is not None and set(values) <= {1.0, 5.0} for values in seen)
    assert any(values == [1.0, 5.0] for values in seen)  # object pixels weigh 1 + 4, the rest 1
    settings, _ = _parse(["--out", "x", "--steps", "1", "--object-weight", "4"])
    assert settings.object_weight == 4.0


def test_decoder_only_keeps_the_encoder_and_its_latent_statistics(trained, tmp_path):
    save_trained_vae(trained, toy_settings(), tmp_path / "start")
    result = train_vae(toy_settings(steps=4, decoder_only=True, init_from=str(tmp_path / "start")))
    start, after = trained.vae.state_dict(), result.vae.state_dict()
    encoder_side = [k for k in start if k.startswith(("encoder.", "quant_conv."))]
    decoder_side = [k for k in start if k.startswith(("decoder.", "post_quant_conv."))]
    assert encoder_side and decoder_side and len(encoder_side) + len(decoder_side) == len(start)
    assert all(torch.equal(start[k], after[k]) for k in encoder_side)
    assert any(not torch.equal(start[k], after[k]) for k in decoder_side)
    assert result.latents_mean == trained.latents_mean and result.latents_std == trained.latents_std
    assert list(result.vae.config.latents_std) == trained.latents_std
    with pytest.raises(ConfigError, match="--init-from"):
        train_vae(toy_settings(decoder_only=True))
    settings, _ = _parse(["--out", "x", "--steps", "1", "--decoder-only", "--init-from", "v", "--crop", "8x8",
                          "--object-weight", "2", "--object-crop-share", "0.5"])
    assert settings.decoder_only and settings.object_crop_share == 0.5
    with pytest.raises(ConfigError, match="--object-crop-share"):
        train_vae(toy_settings(object_crop_share=0.5))  # no crop, no object weight

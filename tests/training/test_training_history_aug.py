"""History layouts (T2V / V2V / I2V drop) and Frame-Aware Corrupt follow their rules exactly."""

from __future__ import annotations

import torch

from helios_core.training.config import CorruptConfig, DropConfig
from helios_core.training.history_aug import augment_history, corrupt_history, drop_history

CHUNK = 9


def _batch(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    history = torch.randn(batch, 4, 19, 4, 4, generator=generator) + 2.0  # no exact zeros
    anchor = torch.randn(batch, 4, 1, 4, 4, generator=generator) + 2.0
    return history, anchor


def _only(**probs: float) -> DropConfig:
    return DropConfig(**{"t2v_prob": 0.0, "v2v_prob": 0.0, "i2v_prob": 0.0, **probs})


def test_t2v_layout_zeroes_history_and_anchor():
    history, anchor = _batch()
    new_h, new_a = drop_history(history, anchor, _only(t2v_prob=1.0), CHUNK, torch.Generator().manual_seed(1))
    assert not new_h.any() and not new_a.any()
    assert history.abs().min() > 0  # inputs untouched


def test_v2v_layout_zeroes_the_oldest_whole_windows_and_keeps_the_newest():
    history, anchor = _batch(16)
    new_h, new_a = drop_history(history, anchor, _only(v2v_prob=1.0), CHUNK, torch.Generator().manual_seed(2))
    zeroed = []
    for b in range(16):
        alive = new_h[b].abs().amax(dim=(0, 2, 3)) > 0
        first_alive = int(alive.float().argmax())
        assert alive[first_alive:].all() and not alive[:first_alive].any()  # a zeroed prefix, the rest intact
        assert first_alive in (1, 10)  # the 1-frame tail, plus 0 or 1 whole window of 9
        assert torch.equal(new_h[b, :, first_alive:], history[b, :, first_alive:])
        zeroed.append(first_alive)
    assert set(zeroed) == {1, 10} and torch.equal(new_a, anchor)


def test_i2v_layout_keeps_anchor_and_newest_latent():
    history, anchor = _batch()
    new_h, new_a = drop_history(history, anchor, _only(i2v_prob=1.0), CHUNK, torch.Generator().manual_seed(3))
    assert not new_h[:, :, :-1].any() and torch.equal(new_h[:, :, -1], history[:, :, -1])
    assert torch.equal(new_a, anchor)


def test_corrupt_leaves_zero_frames_alone_and_never_saturates_the_anchor():
    history, anchor = _batch()
    history[:, :, :10] = 0  # padding / dropped frames
    saturation_only = CorruptConfig(skip_prob=0.0, noise_prob=0.0, blur_prob=0.0, saturation_prob=1.0)
    new_h, new_a = corrupt_history(history, anchor, saturation_only, CHUNK, torch.Generator().manual_seed(4))
    assert not new_h[:, :, :10].any()
    assert not torch.equal(new_h[:, :, 10:], history[:, :, 10:])
    assert torch.equal(new_a, anchor)
    # Saturation keeps the per-pixel channel mean.
    torch.testing.assert_close(new_h.mean(dim=1), history.mean(dim=1))


def test_noise_sigma_stays_within_its_bound():
    history, anchor = _batch()
    generator = torch.Generator().manual_seed(5)
    noise_only = CorruptConfig(skip_prob=0.0, noise_prob=1.0, noise_max_sigma=0.0, blur_prob=0.0, saturation_prob=0.0)
    same_h, same_a = corrupt_history(history, anchor, noise_only, CHUNK, generator)
    assert torch.equal(same_h, history) and torch.equal(same_a, anchor)  # sigma in [0, 0]: x unchanged
    noisy = CorruptConfig(skip_prob=0.0, noise_prob=1.0, noise_max_sigma=1 / 3, blur_prob=0.0, saturation_prob=0.0)
    new_h, _ = corrupt_history(history, anchor, noisy, CHUNK, generator)
    # x' = s eps + (1 - s) x with s <= 1/3: the history keeps at least 2/3 of its correlation with the original.
    for b in range(history.shape[0]):
        for t in range(19):
            a, c = history[b, :, t].flatten(), new_h[b, :, t].flatten()
            assert torch.corrcoef(torch.stack([a - a.mean(), c - c.mean()]))[0, 1] > 0.5


def test_skip_probability_one_disables_corruption_and_everything_is_seeded():
    history, anchor = _batch()
    skip = CorruptConfig(skip_prob=1.0)
    assert torch.equal(corrupt_history(history, anchor, skip, CHUNK, torch.Generator())[0], history)
    first = augment_history(history, anchor, DropConfig(), CorruptConfig(), CHUNK, torch.Generator().manual_seed(9))
    again = augment_history(history, anchor, DropConfig(), CorruptConfig(), CHUNK, torch.Generator().manual_seed(9))
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))


def test_drop_captions_replaces_rows_with_the_negative_embedding_at_its_rate():
    from helios_core.training.history_aug import drop_captions

    text = torch.randn(400, 4, 3)
    original = text.clone()
    negative = torch.zeros(4, 3)
    untouched = drop_captions(text, negative, 0.0, torch.Generator().manual_seed(0))
    assert untouched is text
    out = drop_captions(text, negative, 0.25, torch.Generator().manual_seed(0))
    again = drop_captions(text, negative, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    dropped = (out == 0).all(dim=(1, 2))
    assert 0.15 < dropped.float().mean() < 0.35
    assert torch.equal(out[~dropped], text[~dropped])  # kept rows are the originals
    assert torch.equal(text, original)  # the caller's tensor is not modified

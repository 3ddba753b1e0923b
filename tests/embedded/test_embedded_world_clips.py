"""World clips for VAE training are deterministic, split-aware, and batches do not depend on workers."""

import numpy as np
import pytest
import torch

from helios_core.embedded.world_clips import TrainBatches, world_clip, world_pixels
from helios_core.errors import ConfigError
from helios_core.world import sample_scene


def test_same_arguments_same_frames_and_indices_differ():
    first = world_clip(3, "train", 5, 5, 16, 32)
    assert first.shape == (5, 16, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, world_clip(3, "train", 5, 5, 16, 32))
    assert not np.array_equal(first, world_clip(3, "train", 6, 5, 16, 32))
    assert not np.array_equal(first, world_clip(4, "train", 5, 5, 16, 32))


def test_eval_clips_come_from_the_heldout_split(monkeypatch):
    splits = []
    import helios_core.embedded.world_clips as module

    def spy(seed, *, split):
        splits.append(split)
        return sample_scene(seed, split=split)

    monkeypatch.setattr(module, "sample_scene", spy)
    world_clip(0, "eval", 0, 1, 16, 16)
    world_clip(0, "stats", 0, 1, 16, 16)
    world_clip(0, "train", 0, 1, 16, 16)
    assert splits == ["heldout", "train", "train"]
    with pytest.raises(ConfigError, match="purpose"):
        world_clip(0, "test", 0, 1, 16, 16)


def test_pixels_are_the_rendered_frames_in_minus_one_to_one():
    pixels = world_pixels(1, "train", [0, 1], 5, 16, 32)
    assert pixels.shape == (2, 3, 5, 16, 32)
    frames = world_clip(1, "train", 1, 5, 16, 32)
    expected = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1
    assert torch.equal(pixels[1], expected)
    assert pixels.min() >= -1 and pixels.max() <= 1


def test_train_batches_mix_clip_lengths_and_are_pure_functions_of_the_step():
    batches = TrainBatches(seed=0, steps=40, batch_size=2, clip_frames=(5, 9), height=16, width=16)
    lengths = {batches[step].shape[2] for step in range(12)}
    assert lengths == {5, 9}
    assert torch.equal(batches[7], TrainBatches(0, 40, 2, (5, 9), 16, 16)[7])
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=2)
    for step, batch in enumerate(loader):
        assert torch.equal(batch, batches[step])
        if step == 2:
            break
    with pytest.raises(ConfigError, match="1 \\+ 4k"):
        TrainBatches(0, 1, 1, (8,), 16, 16)



def test_crops_are_windows_of_the_full_render_at_its_scale():
    full = TrainBatches(seed=2, steps=3, batch_size=2, clip_frames=(5,), height=16, width=32)
    cropped = TrainBatches(seed=2, steps=3, batch_size=2, clip_frames=(5,), height=16, width=32, crop=(8, 8))
    whole, windows = full[1], cropped[1]
    assert windows.shape == (2, 3, 5, 8, 8)
    for clip, window in zip(whole, windows):
        found = [(top, left) for top in range(9) for left in range(25)
                 if torch.equal(clip[:, :, top : top + 8, left : left + 8], window)]
        assert found, "a crop must be an exact window of the rendered clip"
    assert torch.equal(windows, cropped[1])
    with pytest.raises(ConfigError, match="must fit"):
        TrainBatches(0, 1, 1, (5,), 16, 16, crop=(32, 8))


def test_object_masks_cover_the_objects_and_their_halo_and_follow_the_crop():
    from helios_core.embedded.world_clips import OBJECT_MARGIN, world_clip_with_objects

    frames, mask = world_clip_with_objects(2, "train", 4, 5, 64, 128)
    assert np.array_equal(frames, world_clip(2, "train", 4, 5, 64, 128))
    assert mask.shape == (5, 64, 128) and mask.dtype == bool
    assert 0.005 < mask.mean() < 0.5  # objects are a few percent of a frame
    # Every masked pixel lies within OBJECT_MARGIN of a pixel that differs from the scene without objects, and every
    # such pixel is masked (checked through the mask's own definition on an independent background render).
    from helios_core.embedded.world_clips import _clip_scene
    from helios_core.world.render import render_background

    scene, start = _clip_scene(2, "train", 4, 5)
    differs = np.any(frames != render_background(scene, start, 5, 64, 128), axis=-1)
    assert np.all(mask[differs])
    for t, y, x in zip(*np.nonzero(mask)):
        rows = slice(max(y - OBJECT_MARGIN, 0), y + OBJECT_MARGIN + 1)
        cols = slice(max(x - OBJECT_MARGIN, 0), x + OBJECT_MARGIN + 1)
        window = differs[t, rows, cols]
        assert window.any()

    plain = TrainBatches(seed=1, steps=4, batch_size=2, clip_frames=(5,), height=32, width=64, crop=(16, 24))
    masked = TrainBatches(seed=1, steps=4, batch_size=2, clip_frames=(5,), height=32, width=64, crop=(16, 24),
                          with_object_masks=True)
    pixels, objects = masked[3]
    assert torch.equal(pixels, plain[3])  # the same clips and the same windows
    assert objects.shape == (2, 1, 5, 16, 24) and objects.dtype == torch.uint8
    full_pixels, full_objects = TrainBatches(1, 4, 2, (5,), 32, 64, with_object_masks=True)[3]
    # The crop cut the same window from the pixels and from the mask.
    for clip in range(2):
        hits = [(top, left) for top in range(32 - 16 + 1) for left in range(64 - 24 + 1)
                if torch.equal(full_pixels[clip, :, :, top:top + 16, left:left + 24], pixels[clip])]
        assert any(torch.equal(full_objects[clip, :, :, top:top + 16, left:left + 24], objects[clip])
                   for top, left in hits)


def test_object_centred_crops_hold_an_object_and_leave_uniform_crops_unchanged():
    masked = dict(seed=3, steps=6, batch_size=4, clip_frames=(5,), height=64, width=128, crop=(16, 16),
                  with_object_masks=True)
    uniform, centred = TrainBatches(**masked), TrainBatches(**masked, object_crop_share=1.0)
    full = TrainBatches(**{**masked, "crop": None})
    held_uniform = held_centred = 0
    for step in range(6):
        (_, plain_objects), (pixels, objects) = uniform[step], centred[step]
        full_pixels, full_objects = full[step]
        for clip in range(4):
            held_uniform += bool(plain_objects[clip].any())
            held_centred += bool(objects[clip].any())
            if full_objects[clip].any():  # a clip with an object gets a window holding some of it
                assert objects[clip].any()
            hits = [(top, left) for top in range(64 - 16 + 1) for left in range(128 - 16 + 1)
                    if torch.equal(full_pixels[clip, :, :, top:top + 16, left:left + 16], pixels[clip])]
            assert any(torch.equal(full_objects[clip, :, :, top:top + 16, left:left + 16], objects[clip])
                       for top, left in hits)  # still an exact window, the same for pixels and mask
    assert held_centred == 24 > held_uniform
    # Share 0 draws exactly the old windows; the centred ones are a pure function of the step too.
    assert torch.equal(TrainBatches(**masked, object_crop_share=0.0)[2][0], uniform[2][0])
    assert torch.equal(TrainBatches(**masked, object_crop_share=1.0)[2][0], centred[2][0])
    with pytest.raises(ConfigError, match="need a crop size and object masks"):
        TrainBatches(0, 1, 1, (5,), 16, 16, crop=(8, 8), object_crop_share=0.5)
    with pytest.raises(ConfigError, match="in \\[0, 1\\]"):
        TrainBatches(**masked, object_crop_share=1.5)

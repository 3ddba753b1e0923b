"""pixels_from_uint8 / to_uint8_video: the engine's pixel conventions, and the device the conversion runs on."""

import numpy as np
import torch

from helios_core.model.vae import pixels_from_uint8, to_uint8_video


def test_uint8_frames_map_to_minus_one_one_and_back() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 16, 3), dtype=np.uint8)
    pixels = pixels_from_uint8(frames)
    assert pixels.shape == (1, 3, 5, 8, 16) and pixels.dtype == torch.float32
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0
    assert torch.equal(pixels[0, :, 2], torch.from_numpy(frames[2]).permute(2, 0, 1).float() / 127.5 - 1.0)
    assert np.array_equal(to_uint8_video(pixels).numpy(), frames)


def test_conversion_runs_on_the_requested_device() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert torch.equal(pixels_from_uint8(frames, "cpu"), pixels_from_uint8(frames))
    on_meta = pixels_from_uint8(frames, "meta")  # no data, but the device and dtype the GPU path would have
    assert on_meta.device.type == "meta" and on_meta.dtype == torch.float32 and on_meta.shape == (1, 3, 3, 8, 8)

"""The rolling history buffer: layout, RoPE index window, rolling, anchor rules, I2V/V2V seeding."""

import torch

from helios_core.history import HistoryBuffer

SHAPE = (1, 2, 4, 4)  # B, C, h, w


def _chunk(value: float, frames: int = 9) -> torch.Tensor:
    return torch.full((1, 2, frames, 4, 4), value)


def test_index_window_with_anchor_matches_the_reference_layout():
    buffer = HistoryBuffer((16, 2, 1), 9, keep_first_frame=True, shape=SHAPE)
    inputs = buffer.inputs()
    assert inputs.indices_short.tolist() == [[0, 19]]
    assert inputs.indices_long.tolist() == [list(range(1, 17))]
    assert inputs.indices_mid.tolist() == [[17, 18]]
    assert inputs.indices_noisy.tolist() == [list(range(20, 29))]
    assert inputs.long.shape[2] == 16 and inputs.mid.shape[2] == 2 and inputs.short.shape[2] == 2


def test_without_anchor_the_short_term_takes_one_more_frame():
    buffer = HistoryBuffer((16, 2, 1), 9, keep_first_frame=False, shape=SHAPE)
    inputs = buffer.inputs()
    assert buffer.latents.shape[2] == 20  # diffusers allocates 19 here and crashes on the split
    assert inputs.short.shape[2] == 2
    assert inputs.indices_short.tolist() == [[18, 19]]
    assert inputs.indices_noisy.tolist() == [list(range(20, 29))]


def test_buffer_rolls_and_keeps_constant_size():
    buffer = HistoryBuffer((16, 2, 1), 9, keep_first_frame=True, shape=SHAPE)
    for value in range(1, 6):
        buffer.push_chunk(_chunk(float(value)), take_anchor=value == 1)
        assert buffer.latents.shape == (1, 2, 19, 4, 4)
    # the newest 19 frames: last chunk (5) x9, chunk 4 x9, one frame of chunk 3
    frame_values = buffer.latents[0, 0, :, 0, 0].tolist()
    assert frame_values == [3.0] + [4.0] * 9 + [5.0] * 9
    inputs = buffer.inputs()
    assert inputs.short[0, 0, :, 0, 0].tolist() == [1.0, 5.0]  # anchor from chunk 0, newest frame


def test_t2v_first_chunk_sees_zero_anchor_and_zero_history():
    buffer = HistoryBuffer((16, 2, 1), 9, keep_first_frame=True, shape=SHAPE)
    inputs = buffer.inputs()
    assert inputs.short.abs().sum() == 0 and inputs.long.abs().sum() == 0


def test_seed_image_sets_anchor_and_newest_slot():
    buffer = HistoryBuffer((16, 2, 1), 9, keep_first_frame=True, shape=SHAPE)
    buffer.seed_image(_chunk(7.0, 1), _chunk(3.0, 1))
    inputs = buffer.inputs()
    assert inputs.short[0, 0, :, 0, 0].tolist() == [7.0, 3.0]
    assert inputs.long.abs().sum() == 0


def test_seed_video_fills_from_the_end():
    buffer = HistoryBuffer((16, 2, 1), 9, keep_first_frame=True, shape=SHAPE)
    video = torch.arange(12.0).view(1, 1, 12, 1, 1).expand(1, 2, 12, 4, 4)
    buffer.seed_video(_chunk(-1.0, 1), video)
    values = buffer.latents[0, 0, :, 0, 0].tolist()
    assert values == [0.0] * 7 + list(map(float, range(12)))
    assert buffer.inputs().short[0, 0, :, 0, 0].tolist() == [-1.0, 11.0]

"""Prompt schedules: which prompt each chunk gets, and the blend across a switch."""

import torch

from helios_core.request import PromptSegment
from helios_core.text_schedule import TextTimeline
from helios_core.model.tiny import tiny_generation_config as tiny_config

EMBEDS = {"a": torch.zeros(1, 4, 2), "b": torch.ones(1, 4, 2)}


def _timeline(blend: int) -> TextTimeline:
    config = tiny_config(**{"prompt.interpolation_chunks": blend})
    segments = (PromptSegment(0.0, "a"), PromptSegment(5.0, "b"))
    return TextTimeline(segments, config, chunk_pixel_frames=33, encode=lambda p: EMBEDS[p])


def test_switch_happens_at_the_first_chunk_starting_after_the_segment_start():
    timeline = _timeline(blend=1)
    # chunks last 33/24 = 1.375 s: chunk 3 starts at 4.125 s, chunk 4 at 5.5 s
    assert [timeline.segment_index(k) for k in range(6)] == [0, 0, 0, 0, 1, 1]
    assert timeline.embeds(3).max() == 0 and timeline.embeds(4).min() == 1


def test_embeddings_blend_linearly_over_the_configured_chunks():
    timeline = _timeline(blend=3)
    weights = [float(timeline.embeds(k).mean()) for k in range(3, 8)]
    assert weights == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_no_negative_prompt_is_encoded_without_guidance():
    calls = []
    config = tiny_config()
    TextTimeline((PromptSegment(0.0, "a"),), config, 33, encode=lambda p: calls.append(p) or EMBEDS["a"])
    assert calls == []

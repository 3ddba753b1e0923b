"""The world's vocabulary: every caption word is in VOCABULARY, and unknown_words flags the rest."""

from __future__ import annotations

from helios_core.world import COLORS, SHAPES, VOCABULARY, caption, sample_scene, unknown_words
from helios_core.world.vocabulary import prompt_words


def test_palette_meets_the_issue_minimums() -> None:
    for required in ("circle", "square", "triangle"):
        assert required in SHAPES
    assert {"star", "diamond"} & set(SHAPES)
    assert {"red", "green", "blue", "yellow", "orange", "purple", "white", "black"} <= set(COLORS)
    assert len(set(COLORS.values())) == len(COLORS)  # distinct RGB per name
    assert all(len(rgb) == 3 and all(0 <= channel <= 255 for channel in rgb) for rgb in COLORS.values())


def test_every_caption_word_is_in_the_vocabulary() -> None:
    for seed in range(100):
        for split in ("train", "heldout"):
            words = prompt_words(caption(sample_scene(seed, split=split)))
            assert set(words) <= VOCABULARY, set(words) - VOCABULARY


def test_unknown_words_lists_each_foreign_word_once_in_order() -> None:
    prompt = "A red Dog moving left, a dog and a cat on a blue background!!"
    assert unknown_words(prompt) == ["dog", "cat"]


def test_unknown_words_is_empty_for_a_vocabulary_prompt() -> None:
    assert unknown_words("a red circle moving left on a blue background") == []
    assert unknown_words("") == []

"""The text-role measures tell a bag of words from an encoder that marks which words describe the background."""

from types import SimpleNamespace

import pytest
import torch

from helios_core.embedded.config import embedded_tokenizer
from helios_core.embedded.text_roles import (
    IGNORE,
    RoleMeasureSizes,
    labelled_captions,
    measure_text_roles,
    world_specs,
)
from helios_core.world import WORD_ROLES, caption, sample_scene

SMALL = RoleMeasureSizes(probe_captions=300, readout_train_captions=1500, readout_test_captions=300, readout_steps=300)


class BagOfWords(torch.nn.Module):
    """Each token's embedding is its word's alone: no context at all."""

    def __init__(self, vocab_size: int, width: int = 32) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.embed = torch.nn.Parameter(torch.randn(vocab_size, width, generator=generator))

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(last_hidden_state=self.embed[input_ids])


class MarksTheBackground(BagOfWords):
    """The bag of words plus one feature: 1 for every token after the caption's "on" (the background phrase on)."""

    def __init__(self, vocab_size: int, on_id: int) -> None:
        super().__init__(vocab_size)
        self.on_id = on_id

    def forward(self, input_ids, attention_mask):
        after_on = (input_ids == self.on_id).cumsum(dim=1).clamp(max=1).unsqueeze(-1).float()
        return SimpleNamespace(last_hidden_state=torch.cat([self.embed[input_ids], 5 * after_on], dim=-1))


@pytest.fixture(scope="module")
def tokenizer():
    return embedded_tokenizer()


def test_labels_follow_the_caption_word_by_word(tokenizer):
    captions = labelled_captions(tokenizer, world_specs(range(50), "train"))
    for row, seed in enumerate(range(50)):
        text = caption(sample_scene(seed).spec())
        tokens = tokenizer.convert_ids_to_tokens(captions.input_ids[row][captions.attention_mask[row].bool()])
        assert tokens[-1] == "</s>" and captions.roles[row, len(tokens) - 1] == IGNORE
        for position, token in enumerate(tokens[:-1]):
            role = WORD_ROLES[int(captions.roles[row, position])]
            assert int(captions.words[row, position]) == int(captions.input_ids[row, position])
            if token == ",":
                assert role == "glue", text
        # Padding carries no label.
        assert (captions.roles[row][~captions.attention_mask[row].bool()] == IGNORE).all()
        background_at = tokens.index("background")
        assert WORD_ROLES[int(captions.roles[row, background_at])] == "background"
        assert WORD_ROLES[int(captions.roles[row, 2])] == "object 1"  # "a <size> <colour> ..."


def test_a_bag_of_words_cannot_say_which_colour_is_the_background(tokenizer):
    measured = measure_text_roles(BagOfWords(len(tokenizer)), tokenizer, SMALL)
    assert measured["background_color_readout"] < 0.7
    assert measured["color_role_cosine"] > 0.999  # the same vector in both roles
    assert measured["role_probe_accuracy"] == pytest.approx(measured["role_probe_accuracy_words_only"], abs=0.03)


def test_marking_the_background_phrase_makes_its_colour_readable(tokenizer):
    on_id = tokenizer.convert_tokens_to_ids("on")
    measured = measure_text_roles(MarksTheBackground(len(tokenizer), on_id), tokenizer, SMALL)
    assert measured["background_color_readout"] > 0.95
    assert measured["color_role_cosine"] < 0.99
    # It tells the background phrase from the objects, not one object from another: a partial gain.
    assert measured["role_probe_accuracy"] > measured["role_probe_accuracy_words_only"] + 0.05

"""World captions as labelled token batches, and a measure of how well a text encoder tells a word's role.

The transformer reads its prompt through cross-attention over the text encoder's per-token embeddings, with no
position of its own on the text side. So whether a colour word names an object or the background, and which object,
must be in that word's embedding, or "a red circle on a blue background" and "a blue circle on a red background" look
the same to it. `measure_text_roles` says how much of that is there:

    role_probe_accuracy   a ridge-regression probe (closed form: no RNG, no training loop) fitted on the embeddings of
                          half the held-out captions' words, scored on the other half, predicting each word's role
                          among WORD_ROLES ("object 1", ..., "background", ...); 1.0 = every role readable
    color_role_cosine     for each colour, the cosine between its mean embedding as an object's colour and as the
                          background's, averaged; near 1.0 = the role is a sliver of the embedding

    background_color_readout  one cross-attention query over the frozen embeddings (learned query, key and value
    object_color_readout      projections: the transformer's own way of reading text), trained briefly on train-split
                              captions, names the background's colour / the first object's colour of held-out
                              captions; a bag of words cannot tell which named colour is which (about 0.5)

The prototype-4 random encoder scores 0.996 cosine and 0.49 background readout (2026-12-08, model card), which is why
its backgrounds take the object's colour in ("a red circle on a blue background" comes out purple).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from helios_core.world import COLORS, WORD_ROLES, SceneSpec, caption, caption_word_roles, sample_scene

IGNORE = -100  # label of </s> and padding: cross_entropy's ignore_index
_ROLE_INDEX = {role: index for index, role in enumerate(WORD_ROLES)}
_PUNCTUATION = (",",)  # the only punctuation `caption` writes


@dataclass(frozen=True)
class LabelledCaptions:
    """Token ids (N, L) with their mask, and per token the role index and token id as labels (IGNORE on </s>, pads)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    roles: torch.Tensor
    words: torch.Tensor

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def take(self, rows: torch.Tensor) -> LabelledCaptions:
        return LabelledCaptions(self.input_ids[rows], self.attention_mask[rows], self.roles[rows], self.words[rows])


def world_specs(seeds: range, split: str) -> list[SceneSpec]:
    """The specs of the world's scenes `sample_scene(seed, split=split)`."""
    return [sample_scene(seed, split=split).spec() for seed in seeds]


def labelled_captions(tokenizer: PreTrainedTokenizerBase, specs: Sequence[SceneSpec]) -> LabelledCaptions:
    """The captions of `specs`, tokenised and labelled word by word."""
    texts = [caption(spec) for spec in specs]
    tokens = tokenizer(texts, padding="longest", return_tensors="pt")
    ids, mask = tokens.input_ids, tokens.attention_mask
    roles = torch.full_like(ids, IGNORE)
    words = torch.full_like(ids, IGNORE)
    punctuation = set(tokenizer.convert_tokens_to_ids(list(_PUNCTUATION)))
    for row, spec in enumerate(specs):
        # The embedded tokenizer is word level: one token per word, a token per comma (labelled glue), then </s>.
        # Anything else would misalign the labels, so it is an error.
        pending = [(tokenizer.convert_tokens_to_ids(word), _ROLE_INDEX[role])
                   for word, role in caption_word_roles(spec)]
        position = 0
        while pending:
            token = int(ids[row, position])
            if token in punctuation:
                roles[row, position] = _ROLE_INDEX["glue"]
            elif token == pending[0][0]:
                roles[row, position] = pending.pop(0)[1]
            else:
                raise ValueError(f"the tokenizer does not split {texts[row]!r} one token per word")
            words[row, position] = token
            position += 1
    return LabelledCaptions(ids, mask, roles, words)


@torch.no_grad()
def token_embeddings(encoder: torch.nn.Module, captions: LabelledCaptions) -> torch.Tensor:
    """The encoder's last hidden state (N, L, D), float32, in eval mode."""
    was_training = encoder.training
    encoder.eval()
    try:
        return encoder(input_ids=captions.input_ids, attention_mask=captions.attention_mask).last_hidden_state.float()
    finally:
        encoder.train(was_training)


@dataclass(frozen=True)
class RoleMeasureSizes:
    """How many captions and steps `measure_text_roles` spends (tests use fewer; the defaults are the model card's)."""

    probe_captions: int = 600
    readout_train_captions: int = 4000
    readout_test_captions: int = 1000
    readout_steps: int = 600


def measure_text_roles(encoder: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                       sizes: RoleMeasureSizes = RoleMeasureSizes()) -> dict[str, float]:
    """Role readability of `encoder` on held-out world captions (see the module docstring)."""
    captions = labelled_captions(tokenizer, world_specs(range(sizes.probe_captions), "heldout"))
    hidden = token_embeddings(encoder, captions)
    on_word = captions.roles != IGNORE
    features, roles, words = hidden[on_word], captions.roles[on_word], captions.words[on_word]
    # Fit on the first half of the captions' words, score on the second (whole captions stay on one side).
    fit_rows = torch.arange(len(captions)).unsqueeze(1).expand_as(captions.roles)[on_word] < len(captions) // 2
    accuracy = _ridge_probe_accuracy(features[fit_rows], roles[fit_rows], features[~fit_rows], roles[~fit_rows])
    # The same probe on the word alone (one-hot ids): what a bag of words gets, the floor an encoder must beat.
    one_hot = torch.nn.functional.one_hot(words, len(tokenizer)).float()
    words_only = _ridge_probe_accuracy(one_hot[fit_rows], roles[fit_rows], one_hot[~fit_rows], roles[~fit_rows])
    return {"role_probe_accuracy": accuracy, "role_probe_accuracy_words_only": words_only,
            "color_role_cosine": _color_role_cosine(features, roles, words, tokenizer),
            **color_readout(encoder, tokenizer, train_captions=sizes.readout_train_captions,
                            test_captions=sizes.readout_test_captions, steps=sizes.readout_steps)}


def color_readout(encoder: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, *, train_captions: int = 4000,
                  test_captions: int = 1000, steps: int = 600, seed: int = 0) -> dict[str, float]:
    """Held-out accuracy of a one-layer cross-attention read of the background's and the first object's colour."""
    colors = list(COLORS)

    def readout_data(seeds: range, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        specs = world_specs(seeds, split)
        captions = labelled_captions(tokenizer, specs)
        # As the pipeline passes them: embeddings past the caption's own tokens are zero (PromptEncoder).
        embeddings = token_embeddings(encoder, captions) * captions.attention_mask.unsqueeze(-1)
        labels = torch.tensor([[colors.index(s.background_color), colors.index(s.objects[0].color)] for s in specs])
        return embeddings, captions.attention_mask.bool(), labels

    train_x, train_mask, train_y = readout_data(range(train_captions), "train")
    test_x, test_mask, test_y = readout_data(range(test_captions), "heldout")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reader = _CrossAttentionReader(train_x.shape[-1], queries=2, classes=len(colors))
        optimizer = torch.optim.Adam(reader.parameters(), lr=3e-3)
        for _ in range(steps):
            rows = torch.randint(len(train_x), (128,))
            logits = reader(train_x[rows], train_mask[rows])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), train_y[rows].flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        correct = reader(test_x, test_mask).argmax(-1).eq(test_y).float().mean(0)
    return {"background_color_readout": float(correct[0]), "object_color_readout": float(correct[1])}


class _CrossAttentionReader(torch.nn.Module):
    """Learned queries attend over token embeddings (one head); each query's read is classified."""

    def __init__(self, width: int, queries: int, classes: int, inner: int = 64) -> None:
        super().__init__()
        self.queries = torch.nn.Parameter(0.1 * torch.randn(queries, inner))
        self.key, self.value = torch.nn.Linear(width, inner), torch.nn.Linear(width, inner)
        self.classify = torch.nn.Linear(inner, classes)

    def forward(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.queries @ self.key(embeddings).transpose(1, 2) / self.queries.shape[-1] ** 0.5
        weights = scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(-1)
        return self.classify(weights @ self.value(embeddings))  # (batch, queries, classes)


def _ridge_probe_accuracy(fit_x: torch.Tensor, fit_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                          ridge: float = 1e-2) -> float:
    mean, std = fit_x.mean(0), fit_x.std(0) + 1e-3
    fit_x, test_x = (fit_x - mean) / std, (test_x - mean) / std
    fit_x = torch.cat([fit_x, torch.ones(len(fit_x), 1)], dim=1).double()
    test_x = torch.cat([test_x, torch.ones(len(test_x), 1)], dim=1).double()
    targets = torch.nn.functional.one_hot(fit_y, len(WORD_ROLES)).double()
    gram = fit_x.T @ fit_x + ridge * len(fit_x) * torch.eye(fit_x.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, fit_x.T @ targets)
    return float((test_x @ weights).argmax(1).eq(test_y).double().mean())


def _color_role_cosine(features: torch.Tensor, roles: torch.Tensor, words: torch.Tensor,
                       tokenizer: PreTrainedTokenizerBase) -> float:
    background = _ROLE_INDEX["background"]
    is_object = (roles != background) & (roles != _ROLE_INDEX["glue"])
    cosines = []
    for color_id in tokenizer.convert_tokens_to_ids(list(COLORS)):
        as_object = features[(words == color_id) & is_object]
        as_background = features[(words == color_id) & (roles == background)]
        if len(as_object) and len(as_background):
            cosines.append(torch.cosine_similarity(as_object.mean(0), as_background.mean(0), dim=0))
    return float(torch.stack(cosines).mean())

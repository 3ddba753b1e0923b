"""A small word-level tokenizer trained locally, for tiny test models and the embedded default model.

The real Helios models use UMT5's SentencePiece tokenizer (256k pieces). A model whose whole vocabulary is a few
hundred known words (the procedural world's words) does not need that: a word-level vocabulary keeps its text
encoder's embedding table tiny and makes every token meaningful. It behaves like T5's tokenizer where the pipeline
cares:

- ids 0, 1, 2 are "<pad>", "</s>", "<unk>" (T5's order), and "</s>" is appended to every sequence by a
  TemplateProcessing post-processor, so `attention_mask.sum()` counts the prompt plus its end token as with T5;
- text is lowercased, then split on whitespace and punctuation (`\\w+|[^\\w\\s]+`);
- any word not in the vocabulary becomes "<unk>".

It is wrapped in transformers' `PreTrainedTokenizerFast`, so it saves with `save_pretrained` and loads back with
`AutoTokenizer.from_pretrained(local_path)` or diffusers' pipeline loader, like any tokenizer in a model folder.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "</s>", "<unk>"
# Listed first so the trainer gives them ids 0, 1, 2 (T5's pad / eos / unk ids).
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN]
# Punctuation is always in the vocabulary: prompts are sentences, and a comma should not become "<unk>".
PUNCTUATION = list(string.punctuation)


def build_word_tokenizer(words: Iterable[str], *, model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """Train a word-level tokenizer whose vocabulary is `words` (after lowercasing and splitting) plus punctuation.

    The same words always give the same vocabulary and ids (the trainer orders by count, then alphabetically).
    """
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=SPECIAL_TOKENS, min_frequency=0, show_progress=False)
    tokenizer.train_from_iterator([*words, *PUNCTUATION], trainer=trainer)
    eos_id = tokenizer.token_to_id(EOS_TOKEN)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS_TOKEN}",
        pair=f"$A {EOS_TOKEN} $B {EOS_TOKEN}",
        special_tokens=[(EOS_TOKEN, eos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=model_max_length,
        padding_side="right",
    )

"""Train the embedded text encoder so each word's embedding says which part of the scene it describes.

Why: the prototype-4 encoder is the random UMT5 `init_folder` builds. Its embedding of a colour word is nearly the
same whether the word names an object or the background (cosine 0.996), and a probe reads a word's role from it no
better than from the bare word (61% against 60%; `text_roles.measure_text_roles`). The transformer has no other way
to see word order, so to it "a red circle on a blue background" is the bag {red, blue, circle, ...}: its backgrounds
come out as the mix of every colour named (red + blue = purple). A released Helios reads a pretrained UMT5-XXL, whose
embeddings carry such context; this is the small stand-in for that pretraining, on captions alone (no video), in a
minute and a half on a 2-core CPU.

Objective, per word token of a world caption (labels from `caption_word_roles`, via `labelled_captions`):
- a cosine classifier must name the word's role among WORD_ROLES ("object 1", "object 2", ..., "background"), and
- another must name the word itself, so the embedding keeps what the word is while it learns where it belongs.
Cosine classifiers (unit vectors, a fixed scale), not plain linear heads: a linear head reaches a low loss with an
arbitrarily small margin by growing its weights, and a sliver of a difference is what the transformer cannot use; a
cosine head scores well only when the role is a large part of the embedding's direction. `anchor_weight` > 0 also
keeps the embeddings near the starting encoder's (relative squared error), so a transformer trained on the old
encoder starts its fine-tuning from something close.

Changing the encoder changes what the transformer reads: a transformer must be trained (or fine-tuned) with the new
encoder in its folder before it is shipped. `python -m helios_core.embedded.train_text_encoder --model FOLDER --out
DIR` writes DIR as a UMT5 folder (fp32 safetensors) plus train_log.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import AutoTokenizer, UMT5EncoderModel

from helios_core.embedded.text_roles import (
    IGNORE,
    LabelledCaptions,
    RoleMeasureSizes,
    labelled_captions,
    measure_text_roles,
    token_embeddings,
    world_specs,
)
from helios_core.errors import ConfigError
from helios_core.world import WORD_ROLES


@dataclass
class TextEncoderTrainSettings:
    model: str  # a model folder: its tokenizer/ and text_encoder/ start the run
    steps: int = 600
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 50
    train_captions: int = 20_000
    cosine_scale: float = 10.0  # logits = scale x cosine; 10 lets a well-separated class reach p ~ 1
    # Measured at 600 steps: 10 moves the embeddings by 7% (embedding_change 0.07) with every role readable, 1 by 42%,
    # 0 by 190%. Small moves let a transformer trained on the old encoder start fine-tuning from something close.
    anchor_weight: float = 10.0
    seed: int = 0
    measure: RoleMeasureSizes = field(default_factory=RoleMeasureSizes)


@dataclass
class TextEncoderTrainResult:
    encoder: UMT5EncoderModel
    losses: list[float]
    before: dict[str, float]  # measure_text_roles of the starting encoder
    after: dict[str, float]
    seconds: float


class _CosineHead(torch.nn.Module):
    def __init__(self, classes: int, width: int, scale: float) -> None:
        super().__init__()
        self.prototypes = torch.nn.Parameter(torch.randn(classes, width))
        self.scale = scale

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        unit = torch.nn.functional.normalize(hidden, dim=-1)
        return self.scale * unit @ torch.nn.functional.normalize(self.prototypes, dim=-1).T


def train_text_encoder(settings: TextEncoderTrainSettings,
                       on_progress: Callable[[str], None] | None = None) -> TextEncoderTrainResult:
    _check(settings)
    report = on_progress or (lambda _line: None)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(Path(settings.model) / "tokenizer", local_files_only=True)
    encoder = UMT5EncoderModel.from_pretrained(Path(settings.model) / "text_encoder", local_files_only=True).float()
    before = measure_text_roles(encoder, tokenizer, settings.measure)
    report(f"starting encoder: {before}")
    captions = labelled_captions(tokenizer, world_specs(range(settings.train_captions), "train"))
    start = copy.deepcopy(encoder).eval().requires_grad_(False)
    anchor = start if settings.anchor_weight > 0 else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        width = encoder.config.d_model
        role_head = _CosineHead(len(WORD_ROLES), width, settings.cosine_scale)
        word_head = _CosineHead(len(tokenizer), width, settings.cosine_scale)
    trained = [*encoder.parameters(), *role_head.parameters(), *word_head.parameters()]
    optimizer = torch.optim.AdamW(trained, lr=settings.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / settings.warmup_steps))
    rows = torch.Generator().manual_seed(settings.seed)
    encoder.train()
    losses: list[float] = []
    for step in range(settings.steps):
        batch = captions.take(torch.randint(len(captions), (settings.batch_size,), generator=rows))
        loss = _loss(encoder, role_head, word_head, anchor, batch, settings.anchor_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 100 == 0 or step + 1 == settings.steps:
            report(f"step {step + 1}/{settings.steps}: loss {sum(losses[-100:]) / len(losses[-100:]):.4f}")
    encoder.eval()
    after = measure_text_roles(encoder, tokenizer, settings.measure)
    after["embedding_change"] = embedding_change(start, encoder, tokenizer, settings.measure.probe_captions)
    report(f"trained encoder: {after}")
    return TextEncoderTrainResult(encoder, losses, before, after, time.perf_counter() - started)


@torch.no_grad()
def embedding_change(start: UMT5EncoderModel, trained: UMT5EncoderModel, tokenizer, num_captions: int) -> float:
    """sum |trained - start|^2 / sum |start|^2 over the kept tokens of held-out captions: how far the embeddings a
    transformer trained on `start` reads have moved (0 = unchanged, 1 = as large as the embeddings themselves)."""
    captions = labelled_captions(tokenizer, world_specs(range(num_captions), "heldout"))
    real = captions.attention_mask.bool()
    old, new = token_embeddings(start, captions)[real], token_embeddings(trained, captions)[real]
    return float((new - old).square().sum() / old.square().sum())


def _loss(encoder: UMT5EncoderModel, role_head: _CosineHead, word_head: _CosineHead,
          anchor: UMT5EncoderModel | None, batch: LabelledCaptions, anchor_weight: float) -> torch.Tensor:
    hidden = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    on_word = batch.roles != IGNORE
    words = hidden[on_word]
    loss = torch.nn.functional.cross_entropy(role_head(words), batch.roles[on_word])
    loss = loss + torch.nn.functional.cross_entropy(word_head(words), batch.words[on_word])
    if anchor is not None:
        with torch.no_grad():
            start = anchor(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        real = batch.attention_mask.bool()  # every token the pipeline keeps (words, commas, </s>)
        loss = loss + anchor_weight * (hidden[real] - start[real]).square().sum() / start[real].square().sum()
    return loss


def _check(settings: TextEncoderTrainSettings) -> None:
    for name in ("steps", "batch_size", "warmup_steps", "train_captions"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(settings, name)}")
    if settings.learning_rate <= 0 or settings.cosine_scale <= 0 or settings.anchor_weight < 0:
        raise ConfigError("learning_rate and cosine_scale must be positive and anchor_weight at least 0")
    for needed in ("tokenizer", "text_encoder/config.json"):
        if not (Path(settings.model) / needed).exists():
            raise ConfigError(f"{settings.model} has no {needed}; pass a model folder (e.g. helios_core/default_model)")


def save_trained_text_encoder(result: TextEncoderTrainResult, settings: TextEncoderTrainSettings,
                              out_dir: Path) -> Path:
    """The UMT5 folder (config.json + fp32 model.safetensors) and train_log.json; returns `out_dir`."""
    out_dir = Path(out_dir)
    # Unlike diffusers' (see save_trained_vae), transformers' save_pretrained writes no `_name_or_path`.
    result.encoder.save_pretrained(out_dir, safe_serialization=True)
    log = {"settings": asdict(settings), "before": result.before, "after": result.after, "seconds": result.seconds,
           "losses_every_10": result.losses[::10], "torch": torch.__version__}
    (out_dir / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helios_core.embedded.train_text_encoder",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model folder whose tokenizer/text encoder start")
    parser.add_argument("--out", type=Path, required=True, help="where to write the trained text_encoder folder")
    defaults = TextEncoderTrainSettings(model="")
    for name in ("steps", "batch_size", "learning_rate", "warmup_steps", "train_captions", "cosine_scale",
                 "anchor_weight", "seed"):
        value = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    settings = TextEncoderTrainSettings(**{k: (str(v) if k == "model" else v) for k, v in vars(args).items()
                                           if k != "out"})
    try:
        result = train_text_encoder(settings, on_progress=lambda line: print(line, flush=True))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    save_trained_text_encoder(result, settings, args.out)
    print(json.dumps({"before": result.before, "after": result.after, "seconds": round(result.seconds, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training samples from a prepared folder, and the deterministic order they are drawn in.

A sample is one chunk k of one video (reference `dataloader_history_latents_dist.py`):
    target   (C, 9, h, w)   the chunk's latents
    history  (C, H, h, w)   the H latents just before it (H = 19 for [16, 2, 1]; 20 without the anchor), zero-padded
                            in front when the video has fewer
    anchor   (C, 1, h, w)   the video's first-frame latent; zeros for k == 0 (nothing has been generated yet)
    text     (L, D)         the caption's embedding
Tensors are float32 whatever the storage dtype. Shards are read with `safe_open` slices, so only the chunks a sample
needs are loaded: a dataset of any size costs memory for one batch.

`SampleOrder` makes the order a pure function of (seed, position): sample number p is item
`randperm(N, seed + epoch)[p % N]` with epoch = p // N. Resuming only needs the position (an integer in the
checkpoint), and every rank of a multi-GPU run can compute its own share without communication.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from helios_core.errors import MediaError
from helios_core.training.prepared_index import NEGATIVE_TEXT_FILE, read_index, read_settings


@dataclass
class TrainingSample:
    target: torch.Tensor
    history: torch.Tensor
    anchor: torch.Tensor
    text: torch.Tensor


@dataclass
class TrainingBatch:
    target: torch.Tensor  # (B, C, 9, h, w)
    history: torch.Tensor  # (B, C, H, h, w)
    anchor: torch.Tensor  # (B, C, 1, h, w)
    text: torch.Tensor  # (B, L, D)

    @classmethod
    def collate(cls, samples: list[TrainingSample]) -> TrainingBatch:
        return cls(*(torch.stack([getattr(s, name) for s in samples]) for name in ("target", "history", "anchor",
                                                                                     "text")))

    def to(self, device: torch.device) -> TrainingBatch:
        return TrainingBatch(self.target.to(device), self.history.to(device), self.anchor.to(device),
                             self.text.to(device))


class LatentChunkDataset:
    def __init__(self, prepared_dir: Path, history_frames: int = 19) -> None:
        self.root = Path(prepared_dir)
        self.settings = read_settings(self.root)
        self.history_frames = history_frames
        prepared, _ = read_index(self.root)
        self.shards: list[Path] = []
        self.shard_captions: list[str] = []
        self.items: list[tuple[int, int]] = []  # (shard number, chunk index)
        for record in prepared.values():
            path = self.root / record["shard"]
            if not path.is_file():
                continue  # listed but deleted: the index is append-only, the file system is the truth
            for k in range(int(record["num_chunks"])):
                self.items.append((len(self.shards), k))
            self.shards.append(path)
            self.shard_captions.append(str(record.get("caption", "")))
        if not self.items:
            raise MediaError(f"prepared folder {self.root} holds no chunks; prepare some videos first")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> TrainingSample:
        shard_number, k = self.items[index]
        with safe_open(self.shards[shard_number], framework="pt") as handle:
            latents = handle.get_slice("latents")
            chunk = latents.get_shape()[2]
            target = latents[k : k + 1][0].float()  # (C, 9, h, w)
            # The history is the last `history_frames` latents of the chunks before k.
            first_chunk = max(0, k - math.ceil(self.history_frames / chunk))
            past = latents[first_chunk:k].float() if k > 0 else target.new_zeros(0, *target.shape)
            text = handle.get_tensor("text").float()
            anchor = handle.get_tensor("first_frame").float() if k > 0 else target.new_zeros(target.shape[0], 1,
                                                                                             *target.shape[2:])
        past = past.permute(1, 0, 2, 3, 4).reshape(target.shape[0], -1, *target.shape[2:])  # (C, frames, h, w)
        past = past[:, -self.history_frames:]
        pad = target.new_zeros(target.shape[0], self.history_frames - past.shape[1], *target.shape[2:])
        return TrainingSample(target, torch.cat([pad, past], dim=1), anchor, text)

    def caption(self, index: int) -> str:
        """The caption item `index` was prepared with (its embedding is the sample's `text`)."""
        return self.shard_captions[self.items[index][0]]

    def negative_text(self) -> torch.Tensor:
        """(L, D) embedding of the default negative prompt, for teachers sampled with CFG."""
        with safe_open(self.root / NEGATIVE_TEXT_FILE, framework="pt") as handle:
            return handle.get_tensor("text").float()


class SampleOrder:
    def __init__(self, num_items: int, seed: int) -> None:
        self.num_items = num_items
        self.seed = seed
        self._epoch: int | None = None
        self._permutation: torch.Tensor | None = None

    def item_at(self, position: int) -> int:
        epoch = position // self.num_items
        if epoch != self._epoch:
            generator = torch.Generator("cpu").manual_seed(self.seed * 1_000_003 + epoch)
            self._permutation = torch.randperm(self.num_items, generator=generator)
            self._epoch = epoch
        return int(self._permutation[position % self.num_items])

    def batch(self, dataset: LatentChunkDataset, position: int, batch_size: int) -> TrainingBatch:
        return TrainingBatch.collate([dataset[self.item_at(position + i)] for i in range(batch_size)])

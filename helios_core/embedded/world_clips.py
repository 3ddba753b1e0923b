"""World clips for VAE training, statistics and evaluation, rendered on the fly and deterministic from a seed.

Clip `index` of purpose `purpose` under run seed `seed` is always the same frames: its scene seed and its start
frame come from `numpy.random.SeedSequence([seed, purpose id, index])`, never from a global RNG, so any worker
process renders any clip in any order and the run is still reproducible. Purposes:
- "train": scenes of the world's train split, the VAE's training data;
- "stats": other train-split scenes, for the latent mean/std written into the VAE config;
- "eval": scenes of the held-out split (object combinations training never shows), for the reported PSNR.
Start frames are drawn uniformly over the world's first minute, so pans, lighting cycles and late motion phases are
all seen. `TrainBatches[step]` is one whole training batch; its clip length is drawn per step from `clip_frames`
(e.g. 17 or 33 frames), so both the 1-frame start and longer causal runs of the VAE are trained. With `crop`,
each clip is rendered at full size and a window of that size is cut from it (same window for all its frames): the
objects keep their real scale, which a smaller render would not, so a convolutional VAE trained on crops (cheap on a
CPU) learns the same world. With `with_object_masks`, an item is (pixels, object mask): the mask (B, 1, T, H, W)
uint8 marks where the frame differs from the same scene's render without objects, widened by OBJECT_MARGIN pixels
(the halo a blurring decoder smears around an object is part of the object's error).
With `object_crop_share` > 0 (masks and a crop needed), that share of the crops is moved to hold an object.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from helios_core.errors import ConfigError
from helios_core.world.render import WORLD_FPS, render_frames, render_frames_and_background
from helios_core.world.scene import sample_scene

PURPOSES = {"train": 0, "stats": 1, "eval": 2}
CLIP_SPLITS = {"train": "train", "stats": "train", "eval": "heldout"}
WORLD_SPAN_FRAMES = 60 * WORLD_FPS  # start frames are drawn inside the first minute
OBJECT_MARGIN = 2  # pixels the object mask reaches beyond the objects' anti-aliased rims


def world_clip(seed: int, purpose: str, index: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """Clip `index` of `purpose`: (num_frames, height, width, 3) uint8 RGB."""
    return render_frames(*_clip_scene(seed, purpose, index, num_frames), num_frames, height, width)


def world_clip_with_objects(
    seed: int, purpose: str, index: int, num_frames: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """`world_clip` and its object mask (num_frames, height, width) bool (see the module docstring)."""
    scene, start_frame = _clip_scene(seed, purpose, index, num_frames)
    frames, background = render_frames_and_background(scene, start_frame, num_frames, height, width)
    differs = np.any(frames != background, axis=-1)
    kernel = np.ones((2 * OBJECT_MARGIN + 1, 2 * OBJECT_MARGIN + 1), np.uint8)
    mask = np.stack([cv2.dilate(frame.view(np.uint8), kernel) for frame in differs]).astype(bool)
    return frames, mask


def _clip_scene(seed: int, purpose: str, index: int, num_frames: int):
    if purpose not in PURPOSES:
        raise ConfigError(f"clip purpose {purpose!r} is unknown; choose one of {', '.join(PURPOSES)}")
    sequence = np.random.SeedSequence([seed, PURPOSES[purpose], index])
    scene_seed, start_draw = (int(v) for v in sequence.generate_state(2, dtype=np.uint32))
    scene = sample_scene(scene_seed, split=CLIP_SPLITS[purpose])
    return scene, start_draw % max(WORLD_SPAN_FRAMES - num_frames + 1, 1)


def clips_to_pixels(clips: Sequence[np.ndarray]) -> torch.Tensor:
    """A list of (T, H, W, 3) uint8 clips -> (B, 3, T, H, W) float32 in [-1, 1] (the VAE's input range)."""
    stacked = torch.from_numpy(np.stack(clips))  # (B, T, H, W, 3)
    return stacked.permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0)


def world_pixels(
    seed: int, purpose: str, indices: Sequence[int], num_frames: int, height: int, width: int
) -> torch.Tensor:
    """Clips `indices` of `purpose` as one (B, 3, T, H, W) batch in [-1, 1]."""
    return clips_to_pixels([world_clip(seed, purpose, i, num_frames, height, width) for i in indices])


class TrainBatches(torch.utils.data.Dataset):
    """Item `step` is that step's training batch (B, 3, T, H, W) in [-1, 1]; T is drawn from `clip_frames`. With
    `with_object_masks` it is (that batch, its object mask (B, 1, T, H, W) uint8).

    Batches are whole items (use `DataLoader(batch_size=None)`), so a worker renders one step's clips and the
    batch does not depend on how many workers there are.
    """

    def __init__(
        self,
        seed: int,
        steps: int,
        batch_size: int,
        clip_frames: Sequence[int],
        height: int,
        width: int,
        crop: tuple[int, int] | None = None,
        with_object_masks: bool = False,
        object_crop_share: float = 0.0,
    ) -> None:
        if not clip_frames or any(f < 1 or (f - 1) % 4 for f in clip_frames):
            raise ConfigError(f"clip lengths must be 1 + 4k frames (e.g. 17, 33), got {list(clip_frames)}")
        self.seed, self.steps, self.batch_size = seed, steps, batch_size
        self.clip_frames = tuple(clip_frames)
        self.height, self.width = height, width
        if crop is not None and not (0 < crop[0] <= height and 0 < crop[1] <= width):
            raise ConfigError(f"crop {crop[0]}x{crop[1]} must fit inside the {height}x{width} frames")
        if not 0.0 <= object_crop_share <= 1.0:
            raise ConfigError(f"the share of object-centred crops must be in [0, 1], got {object_crop_share}")
        if object_crop_share > 0 and (crop is None or not with_object_masks):
            raise ConfigError("object-centred crops need a crop size and object masks")
        self.crop = crop
        self.with_object_masks = with_object_masks
        self.object_crop_share = object_crop_share

    def __len__(self) -> int:
        return self.steps

    def frames_at(self, step: int) -> int:
        rng = np.random.default_rng([self.seed, PURPOSES["train"], step, 1])
        return self.clip_frames[int(rng.integers(len(self.clip_frames)))]

    def __getitem__(self, step: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        first = step * self.batch_size
        num_frames = self.frames_at(step)
        clips, masks = [], []
        for index in range(first, first + self.batch_size):
            if self.with_object_masks:
                frames, mask = world_clip_with_objects(self.seed, "train", index, num_frames, self.height, self.width)
                masks.append(mask)
            else:
                frames = world_clip(self.seed, "train", index, num_frames, self.height, self.width)
            clips.append(frames)
        pixels = clips_to_pixels(clips)
        objects = torch.from_numpy(np.stack(masks)).unsqueeze(1).to(torch.uint8) if masks else None
        if self.crop is not None:
            windows = self._windows(step, objects)
            pixels = torch.stack([clip[:, :, rows, cols] for clip, (rows, cols) in zip(pixels, windows)])
            if objects is not None:
                objects = torch.stack([mask[:, :, rows, cols] for mask, (rows, cols) in zip(objects, windows)])
        return pixels if objects is None else (pixels, objects)

    def _windows(self, step: int, objects: torch.Tensor | None) -> list[tuple[slice, slice]]:
        """One crop window per clip of batch `step`. A uniform window (drawn exactly as without object crops, so
        runs without them are unchanged); with probability `object_crop_share` it is replaced by one that holds a
        random object pixel of the clip at a uniformly random place inside it (clamped to the frame).

        Why: a 64x64 window drawn uniformly from a 128x256 frame holds almost no object about half the time (54% of
        160 training crops held more than 2% object pixels), and the background is what the VAE already keeps. A
        clip without any object keeps its uniform window."""
        rng = np.random.default_rng([self.seed, PURPOSES["train"], step, 2])
        centred = np.random.default_rng([self.seed, PURPOSES["train"], step, 3])
        crop_h, crop_w = self.crop
        windows = []
        for clip in range(self.batch_size):
            top = int(rng.integers(self.height - crop_h + 1))
            left = int(rng.integers(self.width - crop_w + 1))
            if self.object_crop_share > 0 and centred.random() < self.object_crop_share:
                ys, xs = np.nonzero(objects[clip, 0].amax(dim=0).numpy())
                if len(ys):
                    pick = int(centred.integers(len(ys)))
                    top = int(np.clip(ys[pick] - centred.integers(crop_h), 0, self.height - crop_h))
                    left = int(np.clip(xs[pick] - centred.integers(crop_w), 0, self.width - crop_w))
            windows.append((slice(top, top + crop_h), slice(left, left + crop_w)))
        return windows

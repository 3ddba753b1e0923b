"""Scenes of the procedural world: `WorldObject`, `Scene`, `sample_scene`, `scene_from_prompt`, and the split.

A `Scene` is a `SceneSpec` (what a caption says) plus where each object starts and its phase, and the seed it came
from. Everything is deterministic: `sample_scene(seed, split=...)` and `scene_from_prompt(prompt, seed)` draw from a
numpy Generator seeded with the seed only, so the same arguments give the same scene on every machine.

Train / held-out split: each (colour, shape, motion) triple is assigned to "train" or "heldout" by a hash of its
words (about 20% held out). Every object of a train scene uses a train triple and every object of a held-out scene a
held-out triple, so a held-out caption contains only object combinations the model never saw in training.

Placement: objects get home points along a diagonal of the frame (1/n apart in x and in y), so two objects with the
same linear motion keep their distance all minute instead of sliding on top of each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from helios_core.errors import ConfigError
from helios_core.world.caption import caption, parse_prompt
from helios_core.world.spec import MAX_OBJECTS, ObjectSpec, PromptError, SceneSpec
from helios_core.world.vocabulary import BACKGROUNDS, CAMERA, COLORS, MOTIONS, SHAPES, SIZES

__all__ = [
    "SPLITS",
    "ObjectSpec",
    "PromptError",
    "Scene",
    "SceneSpec",
    "WorldObject",
    "caption",
    "combination_split",
    "parse_prompt",
    "sample_scene",
    "scene_from_prompt",
    "split_triples",
]

SPLITS = ("train", "heldout")
HELDOUT_FRACTION = 0.2
PAN_PROBABILITY = 0.35  # among textured backgrounds only: a pan over a solid or vertical-gradient one is invisible
LIGHTING_PROBABILITY = 0.3
_TEXTURED = ("striped", "checkered")


@dataclass(frozen=True)
class WorldObject:
    """One object: what it is (as in ObjectSpec), where it starts, and its phase.

    start_x, start_y: home point as fractions of the frame width/height (kinematics may clamp it so the object
    stays on screen). phase in [0, 1): orbit angle, grow/shrink cycle offset, or which diagonal a bouncer takes.
    """

    shape: str
    color: str
    size: str
    motion: str
    start_x: float
    start_y: float
    phase: float

    def spec(self) -> ObjectSpec:
        return ObjectSpec(shape=self.shape, color=self.color, size=self.size, motion=self.motion)


@dataclass(frozen=True)
class Scene:
    """A full, renderable scene; `caption(scene)` describes it and `scene.spec()` is what that caption parses to."""

    objects: tuple[WorldObject, ...]
    background: str
    background_color: str
    camera_pan: str | None
    lighting_change: bool
    seed: int

    def __post_init__(self) -> None:
        self.spec()  # validates the same invariants as SceneSpec

    def spec(self) -> SceneSpec:
        return SceneSpec(
            objects=tuple(obj.spec() for obj in self.objects),
            background=self.background,
            background_color=self.background_color,
            camera_pan=self.camera_pan,
            lighting_change=self.lighting_change,
        )


def combination_split(color: str, shape: str, motion: str) -> str:
    """'train' or 'heldout' for one (colour, shape, motion) triple; stable across runs and Python versions."""
    digest = hashlib.blake2b(f"{color}|{shape}|{motion}".encode(), digest_size=8).digest()
    return "heldout" if int.from_bytes(digest, "big") / 2**64 < HELDOUT_FRACTION else "train"


@lru_cache(maxsize=None)
def split_triples(split: str) -> tuple[tuple[str, str, str], ...]:
    """All (colour, shape, motion) triples of one split, in a fixed order."""
    _check_split(split)
    return tuple(
        (color, shape, motion)
        for color in COLORS
        for shape in SHAPES
        for motion in MOTIONS
        if combination_split(color, shape, motion) == split
    )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"unknown world split {split!r}; use 'train' or 'heldout'")


def sample_scene(seed: int, *, split: str = "train") -> Scene:
    """A random scene whose every object uses a (colour, shape, motion) triple of `split`."""
    _check_split(split)
    _check_seed(seed)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    num_objects = int(rng.integers(1, MAX_OBJECTS + 1))
    triples = split_triples(split)
    specs: list[ObjectSpec] = []
    for _ in range(num_objects):
        used_colors = {spec.color for spec in specs}
        allowed = [triple for triple in triples if triple[0] not in used_colors]
        color, shape, motion = allowed[int(rng.integers(len(allowed)))]
        specs.append(ObjectSpec(shape=shape, color=color, size=str(rng.choice(SIZES)), motion=motion))
    free_colors = [color for color in COLORS if color not in {spec.color for spec in specs}]
    background_color = free_colors[int(rng.integers(len(free_colors)))]
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    camera_pan = None
    if background in _TEXTURED and rng.random() < PAN_PROBABILITY:
        camera_pan = CAMERA[int(rng.integers(len(CAMERA)))]
    lighting_change = bool(rng.random() < LIGHTING_PROBABILITY)
    spec = SceneSpec(tuple(specs), background, background_color, camera_pan, lighting_change)
    return _place(spec, rng, seed)


def scene_from_prompt(prompt: str, seed: int) -> Scene:
    """The scene a prompt describes, with start positions and phases drawn from `seed`; raises PromptError."""
    _check_seed(seed)
    return _place(parse_prompt(prompt), np.random.default_rng([seed, len(SPLITS)]), seed)


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"world seed must be a non-negative integer, got {seed!r}")


def _place(spec: SceneSpec, rng: np.random.Generator, seed: int) -> Scene:
    """Give each object of `spec` a home point on a (random) diagonal slot, a little jitter, and a phase."""
    count = len(spec.objects)
    slots = rng.permutation(count)
    anti_diagonal = bool(rng.random() < 0.5)
    jitter = 0.15 if count == 1 else 0.06
    objects = []
    for obj, slot in zip(spec.objects, slots):
        lane = (slot + 0.5) / count
        home_x = lane + rng.uniform(-jitter, jitter)
        home_y = (1.0 - lane if anti_diagonal else lane) + rng.uniform(-jitter, jitter)
        objects.append(
            WorldObject(
                shape=obj.shape,
                color=obj.color,
                size=obj.size,
                motion=obj.motion,
                start_x=float(np.clip(home_x, 0.0, 1.0)),
                start_y=float(np.clip(home_y, 0.0, 1.0)),
                phase=float(rng.random()),
            )
        )
    return Scene(
        objects=tuple(objects),
        background=spec.background,
        background_color=spec.background_color,
        camera_pan=spec.camera_pan,
        lighting_change=spec.lighting_change,
        seed=int(seed),
    )

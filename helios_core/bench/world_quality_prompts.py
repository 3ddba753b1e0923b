"""The held-out prompt set of the world bench: `heldout_prompts(count, seed) -> tuple[WorldPrompt, ...]`.

Prompt i comes from the scene `sample_scene(clip_seed(seed, i), split="heldout")` (the same seed scheme as the world
dataset writer), and its caption is the prompt. Scenes whose caption was already drawn are skipped, so the set holds
`count` different prompts; it is a pure function of (count, seed), the same on every machine. Every object of a
held-out scene uses a held-out (colour, shape, motion) triple (scene.py), so no prompt names an object the model was
trained on.

The scene seed is also the generation seed of that prompt's video, for every model compared: the ablation rows see
the same prompts and the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from helios_core.errors import ConfigError
from helios_core.world import Scene, caption, clip_seed, sample_scene

# Held-out scenes are combinatorially many (triples x sizes x backgrounds x extras); a duplicate is rare, so drawing
# this many times the requested count without filling it can only mean the request is impossibly large.
MAX_DRAWS_PER_PROMPT = 20


@dataclass(frozen=True)
class WorldPrompt:
    """One prompt of the set: its position, its text, and the scene it describes (scene.seed seeds the video)."""

    index: int
    prompt: str
    scene: Scene

    @property
    def seed(self) -> int:
        return self.scene.seed


def heldout_prompts(count: int, seed: int) -> tuple[WorldPrompt, ...]:
    """`count` different held-out prompts, deterministic in (count, seed); see the module docstring."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"the number of world prompts must be a positive integer, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"the world bench seed must be a non-negative integer, got {seed!r}")
    prompts: list[WorldPrompt] = []
    seen: set[str] = set()
    for draw in range(count * MAX_DRAWS_PER_PROMPT):
        scene = sample_scene(clip_seed(seed, draw), split="heldout")
        text = caption(scene)
        if text in seen:
            continue
        seen.add(text)
        prompts.append(WorldPrompt(index=len(prompts), prompt=text, scene=scene))
        if len(prompts) == count:
            return tuple(prompts)
    raise ConfigError(f"could not draw {count} different held-out world prompts; ask for fewer")

"""The procedural world the embedded default model is trained on and judged by (issue 6).

Scenes of one to three coloured shapes with motions on a background, deterministic from a seed; captions built from
a fixed vocabulary and parsed back; a pure-function renderer (any frame, any length, chunk by chunk); a dataset
writer (MP4s plus manifest.jsonl); and a model-free judge that scores a video against a prompt second by second.
"""

from helios_core.world.caption import WORD_ROLES, caption, caption_word_roles, parse_prompt
from helios_core.world.dataset import clip_seed, write_world_dataset
from helios_core.world.judge import JudgeReport, ObjectVerdict, SecondVerdict, judge_video
from helios_core.world.render import WORLD_FPS, render_background, render_frames
from helios_core.world.scene import (
    SPLITS,
    Scene,
    WorldObject,
    combination_split,
    sample_scene,
    scene_from_prompt,
    split_triples,
)
from helios_core.world.spec import ObjectSpec, PromptError, SceneSpec, swap_first_object_and_background_colors
from helios_core.world.vocabulary import (
    BACKGROUNDS,
    CAMERA,
    COLORS,
    LIGHTING,
    MOTIONS,
    SHAPES,
    SIZES,
    VOCABULARY,
    unknown_words,
)

__all__ = [
    "BACKGROUNDS",
    "CAMERA",
    "COLORS",
    "LIGHTING",
    "MOTIONS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "VOCABULARY",
    "WORLD_FPS",
    "WORD_ROLES",
    "JudgeReport",
    "ObjectSpec",
    "ObjectVerdict",
    "PromptError",
    "Scene",
    "SceneSpec",
    "SecondVerdict",
    "WorldObject",
    "caption",
    "caption_word_roles",
    "clip_seed",
    "combination_split",
    "judge_video",
    "parse_prompt",
    "render_background",
    "render_frames",
    "sample_scene",
    "scene_from_prompt",
    "split_triples",
    "swap_first_object_and_background_colors",
    "unknown_words",
    "write_world_dataset",
]

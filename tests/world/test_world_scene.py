"""Scenes: determinism, the train/held-out split, captions and their parser."""

from __future__ import annotations

import pytest

from helios_core.errors import ConfigError, UserInputError
from helios_core.world import (
    MOTIONS,
    ObjectSpec,
    PromptError,
    SceneSpec,
    caption,
    combination_split,
    parse_prompt,
    sample_scene,
    scene_from_prompt,
    split_triples,
)


def test_sample_scene_is_deterministic_and_seed_sensitive() -> None:
    assert sample_scene(7) == sample_scene(7)
    assert sample_scene(7, split="heldout") == sample_scene(7, split="heldout")
    assert len({caption(sample_scene(seed)) for seed in range(30)}) > 25
    assert sample_scene(7).seed == 7


def test_scene_from_prompt_is_deterministic_and_follows_the_prompt() -> None:
    prompt = "a small red circle moving left and a large yellow star orbiting on a blue striped background"
    scene = scene_from_prompt(prompt, seed=3)
    assert scene == scene_from_prompt(prompt, seed=3)
    assert scene != scene_from_prompt(prompt, seed=4)
    assert caption(scene) == prompt


def test_caption_round_trips_through_parse_prompt() -> None:
    seen_features = set()
    for seed in range(250):
        for split in ("train", "heldout"):
            scene = sample_scene(seed, split=split)
            assert parse_prompt(caption(scene)) == scene.spec()
            seen_features |= {scene.background, scene.camera_pan, scene.lighting_change, len(scene.objects)}
            seen_features |= {obj.motion for obj in scene.objects}
    # The round trip covered every grammar branch: patterns, pans, lighting, 1-3 objects, every motion.
    assert {"solid", "gradient", "striped", "checkered", "left", "right", None, True, False, 1, 2, 3} <= seen_features
    assert set(MOTIONS) <= seen_features


def test_splits_are_disjoint_in_colour_shape_motion_triples() -> None:
    train, heldout = set(split_triples("train")), set(split_triples("heldout"))
    assert train and heldout and not train & heldout
    assert 0.1 < len(heldout) / (len(train) + len(heldout)) < 0.3
    for seed in range(150):
        for obj in sample_scene(seed, split="train").objects:
            assert (obj.color, obj.shape, obj.motion) in train
            assert combination_split(obj.color, obj.shape, obj.motion) == "train"
        for obj in sample_scene(seed, split="heldout").objects:
            assert (obj.color, obj.shape, obj.motion) in heldout
    # Every single word still appears in training: held out are combinations, not words.
    for position in range(3):
        assert {triple[position] for triple in train} == {triple[position] for triple in train | heldout}


def test_scene_invariants_hold_for_sampled_scenes() -> None:
    for seed in range(150):
        scene = sample_scene(seed)
        colors = [obj.color for obj in scene.objects]
        assert 1 <= len(colors) <= 3 and len(set(colors)) == len(colors)
        assert scene.background_color not in colors
        for obj in scene.objects:
            assert 0.0 <= obj.start_x <= 1.0 and 0.0 <= obj.start_y <= 1.0 and 0.0 <= obj.phase < 1.0


def test_parse_prompt_accepts_hand_typed_variants() -> None:
    spec = parse_prompt("A red circle moving left on a blue background")
    assert spec == SceneSpec((ObjectSpec("circle", "red", "medium", "left"),), "solid", "blue")
    spec = parse_prompt(
        "an orange large square bouncing, a cyan star growing and a pink diamond orbiting "
        "on a white checkered background, changing light, camera pan right"
    )
    assert [obj.color for obj in spec.objects] == ["orange", "cyan", "pink"]
    assert spec.objects[0].size == "large"
    assert (spec.background, spec.background_color, spec.camera_pan, spec.lighting_change) == (
        "checkered", "white", "right", True
    )


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        ("a red circle moving left", "background"),
        ("a red circle on a blue background", "no motion"),
        ("a circle moving left on a blue background", "no colour"),
        ("a red moving left on a blue background", "shape"),
        ("a red dog moving left on a blue background", "dog"),
        ("a red circle moving left on a red background", "cannot be seen"),
        ("a red circle moving left and a red star growing on a blue background", "share a colour"),
        ("a red circle moving left on a background", "background has no colour"),
        ("a red circle moving left on a blue background slow camera pan up", "camera pan"),
        ("on a blue background", "no object"),
        (
            "a red circle growing, a blue star growing, a green square growing and a pink star growing on a white "
            "background",
            "1 to 3 objects",
        ),
    ],
)
def test_parse_prompt_rejects_what_it_cannot_read(prompt: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as raised:
        parse_prompt(prompt)
    assert isinstance(raised.value, PromptError) and isinstance(raised.value, UserInputError)


def test_bad_split_and_seed_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="split"):
        sample_scene(1, split="test")
    with pytest.raises(ConfigError, match="seed"):
        sample_scene(-1)

"""caption_word_roles: one label per caption word, in order, naming the part of the scene the word describes."""

from helios_core.world import (
    WORD_ROLES,
    caption,
    caption_word_roles,
    parse_prompt,
    sample_scene,
    swap_first_object_and_background_colors,
)
from helios_core.world.vocabulary import prompt_words


def test_words_are_exactly_the_captions_words_for_many_scenes():
    for seed in range(300):
        for split in ("train", "heldout"):
            spec = sample_scene(seed, split=split).spec()
            labelled = caption_word_roles(spec)
            assert [word for word, _ in labelled] == prompt_words(caption(spec))
            assert {role for _, role in labelled} <= set(WORD_ROLES)


def test_roles_of_a_two_object_scene_with_camera_and_light():
    spec = parse_prompt("a small red circle moving left and a large blue star orbiting on a green striped background, "
                        "slow camera pan right, changing light")
    roles = [role for _, role in caption_word_roles(spec)]
    assert roles == (["object 1"] * 6 + ["glue"] + ["object 2"] * 5 + ["glue"] + ["background"] * 4
                     + ["camera"] * 4 + ["lighting"] * 2)


def test_three_objects_are_numbered_in_caption_order():
    spec = parse_prompt("a red circle bouncing, a blue square growing and a white star shrinking on a black background")
    labelled = caption_word_roles(spec)
    colours = {word: role for word, role in labelled if word in ("red", "blue", "white", "black")}
    assert colours == {"red": "object 1", "blue": "object 2", "white": "object 3", "black": "background"}


def test_swapping_first_object_and_background_colours_keeps_the_words_and_changes_the_roles():
    for seed in range(100):
        spec = sample_scene(seed).spec()
        swapped = swap_first_object_and_background_colors(spec)
        # The same words but for articles ("an orange" / "a red").
        assert sorted(_without_articles(caption(swapped))) == sorted(_without_articles(caption(spec)))
        assert caption(swapped) != caption(spec)
        assert swapped.background_color == spec.objects[0].color
        assert swapped.objects[0].color == spec.background_color and swapped.objects[1:] == spec.objects[1:]
        assert parse_prompt(caption(swapped)) == swapped


def _without_articles(text: str) -> list[str]:
    return [word for word in prompt_words(text) if word not in ("a", "an")]

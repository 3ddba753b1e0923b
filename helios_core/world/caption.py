"""Captions and their inverse: `caption(spec) -> str` and `parse_prompt(prompt) -> SceneSpec`.

Grammar of a caption (every word is in `VOCABULARY`):

    caption   := object ("," object)* " and " object " on " article colour [pattern] " background"
                 [", slow camera pan " (left|right)] [", changing light"]
    object    := article size colour shape motion
    motion    := "moving " (left|right|up|down) | bouncing | orbiting | growing | shrinking

e.g. "a small red circle moving left and a large yellow star orbiting on a blue striped background, slow camera pan
right".

The parser is more forgiving than the writer, so people can type prompts by hand: case, punctuation and the choice
of a/an do not matter, size may be left out (it means medium), size and colour may come in either order, "and" and
commas both separate objects, and the camera and lighting phrases may come in either order. It accepts only words of
`VOCABULARY`, so every prompt it accepts is one the model's tokenizer knows. Invariant: for every spec the world
makes, `parse_prompt(caption(spec)) == spec`.

`caption_word_roles(spec)` labels each word of the caption with the part of the scene it describes ("object 1", ...,
"background", "camera", "lighting", or "glue" for "on" and "and"): what the embedded text encoder is trained to carry
in each word's embedding (helios_core.embedded.train_text_encoder), so the transformer can tell "a red circle on a
blue background" from "a blue circle on a red background".
"""

from __future__ import annotations

from helios_core.world.spec import MAX_OBJECTS, ObjectSpec, PromptError, SceneSpec
from helios_core.world.vocabulary import (
    BACKGROUND_WORDS,
    CAMERA,
    CAMERA_PHRASE,
    COLORS,
    DIRECTIONS,
    LIGHTING_PHRASE,
    MOTION_PHRASES,
    SHAPES,
    SIZES,
    article_for,
    prompt_words,
    unknown_words,
)

DEFAULT_SIZE = "medium"
_ARTICLES = ("a", "an")
_SINGLE_WORD_MOTIONS = {phrase: motion for motion, phrase in MOTION_PHRASES.items() if " " not in phrase}
_PATTERN_BY_WORD = {word: pattern for pattern, word in BACKGROUND_WORDS.items()}


def caption(spec: SceneSpec) -> str:
    """The English caption of a scene (a `Scene` works too: it has the same fields)."""
    phrases = [_object_phrase(obj) for obj in spec.objects]
    objects_text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    pattern_word = BACKGROUND_WORDS.get(spec.background)
    background_words = [spec.background_color] + ([pattern_word] if pattern_word else []) + ["background"]
    text = f"{objects_text} on {article_for(spec.background_color)} {' '.join(background_words)}"
    if spec.camera_pan is not None:
        text += f", {CAMERA_PHRASE} {spec.camera_pan}"
    if spec.lighting_change:
        text += f", {LIGHTING_PHRASE}"
    return text


WORD_ROLES: tuple[str, ...] = ("glue", *(f"object {n}" for n in range(1, MAX_OBJECTS + 1)), "background", "camera",
                                "lighting")


def caption_word_roles(spec: SceneSpec) -> list[tuple[str, str]]:
    """(word, role) for every word of `caption(spec)`, in order (commas are not words: see `prompt_words`)."""
    labelled: list[tuple[str, str]] = []
    for index, obj in enumerate(spec.objects):
        if index > 0 and index == len(spec.objects) - 1:
            labelled.append(("and", "glue"))
        labelled += [(word, f"object {index + 1}") for word in _object_phrase(obj).split()]
    labelled.append(("on", "glue"))
    pattern_word = BACKGROUND_WORDS.get(spec.background)
    background_words = [article_for(spec.background_color), spec.background_color]
    background_words += [pattern_word] if pattern_word else []
    labelled += [(word, "background") for word in [*background_words, "background"]]
    if spec.camera_pan is not None:
        labelled += [(word, "camera") for word in [*CAMERA_PHRASE.split(), spec.camera_pan]]
    if spec.lighting_change:
        labelled += [(word, "lighting") for word in LIGHTING_PHRASE.split()]
    return labelled


def _object_phrase(obj: ObjectSpec) -> str:
    return f"{article_for(obj.size)} {obj.size} {obj.color} {obj.shape} {MOTION_PHRASES[obj.motion]}"


def parse_prompt(prompt: str) -> SceneSpec:
    """Recover the scene a prompt describes; raises PromptError (a ValueError) naming what it cannot read."""
    unknown = unknown_words(prompt)
    if unknown:
        raise PromptError(f"prompt has words outside the world's vocabulary: {', '.join(unknown)}")
    words = prompt_words(prompt)
    if "on" not in words:
        raise PromptError("prompt names no background; end it with e.g. 'on a blue background'")
    split_at = words.index("on")
    objects = _parse_objects(words[:split_at])
    background, background_color, rest = _parse_background(words[split_at + 1 :])
    camera_pan, lighting_change = _parse_extras(rest)
    return SceneSpec(tuple(objects), background, background_color, camera_pan, lighting_change)


def _parse_objects(words: list[str]) -> list[ObjectSpec]:
    objects: list[ObjectSpec] = []
    position = 0
    while position < len(words):
        if words[position] in _ARTICLES or words[position] == "and":
            position += 1
            continue
        size, color = None, None
        while position < len(words) and words[position] not in SHAPES:
            word = words[position]
            if word in SIZES and size is None:
                size = word
            elif word in COLORS and color is None:
                color = word
            else:
                raise PromptError(f"unexpected word {word!r} before a shape (circle, square, ...) in the prompt")
            position += 1
        if position == len(words):
            raise PromptError("an object in the prompt names no shape (circle, square, triangle, star, diamond)")
        shape = words[position]
        position += 1
        if color is None:
            raise PromptError(f"the {shape} in the prompt has no colour; say e.g. 'a red {shape}'")
        motion, position = _parse_motion(words, position, shape)
        objects.append(ObjectSpec(shape=shape, color=color, size=size or DEFAULT_SIZE, motion=motion))
    if not objects:
        raise PromptError("prompt names no object; start it with e.g. 'a red circle moving left'")
    return objects


def _parse_motion(words: list[str], position: int, shape: str) -> tuple[str, int]:
    word = words[position] if position < len(words) else None
    if word in _SINGLE_WORD_MOTIONS:
        return _SINGLE_WORD_MOTIONS[word], position + 1
    if word == "moving" and position + 1 < len(words) and words[position + 1] in DIRECTIONS:
        return words[position + 1], position + 2
    raise PromptError(
        f"the {shape} in the prompt has no motion; say e.g. 'moving left', 'bouncing', 'orbiting' or 'growing'"
    )


def _parse_background(words: list[str]) -> tuple[str, str, list[str]]:
    if "background" not in words:
        raise PromptError("prompt names no background; say e.g. 'on a blue background'")
    end = words.index("background")
    color, pattern = None, "solid"
    for word in words[:end]:
        if word in _ARTICLES:
            continue
        if word in COLORS and color is None:
            color = word
        elif word in _PATTERN_BY_WORD and pattern == "solid":
            pattern = _PATTERN_BY_WORD[word]
        else:
            raise PromptError(f"unexpected word {word!r} in the background phrase of the prompt")
    if color is None:
        raise PromptError("the background has no colour; say e.g. 'on a blue background'")
    return pattern, color, words[end + 1 :]


def _parse_extras(words: list[str]) -> tuple[str | None, bool]:
    camera_pan: str | None = None
    lighting_change = False
    camera_words, lighting_words = CAMERA_PHRASE.split(), LIGHTING_PHRASE.split()
    position = 0
    while position < len(words):
        if words[position] == "and":
            position += 1
        elif words[position : position + len(lighting_words)] == lighting_words:
            lighting_change = True
            position += len(lighting_words)
        elif words[position] in camera_words[:2]:
            # "slow camera pan left", also without "slow".
            start = position + (1 if words[position] == "slow" else 0)
            direction = words[start + 2] if start + 2 < len(words) else None
            if words[start : start + 2] != camera_words[1:] or direction not in CAMERA:
                raise PromptError("say the camera pan as 'slow camera pan left' or 'slow camera pan right'")
            camera_pan = direction
            position = start + 3
        else:
            raise PromptError(f"unexpected word {words[position]!r} after the background phrase of the prompt")
    return camera_pan, lighting_change

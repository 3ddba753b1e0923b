"""The procedural world's words: colours (with their RGB values), shapes, sizes, motions, backgrounds, camera, lighting.

Every caption the world writes is built only from these words, so `VOCABULARY` is the complete set of words a caption
can contain (the text tokenizer of the embedded model is trained on it, and the CLI warns about prompt words outside
it through `unknown_words`).

Invariants:
- Each named colour has two tones: its base RGB (objects, and the light tone of backgrounds) and `shade_of(colour)`
  (the dark tone of gradient/striped/checkered backgrounds). The judge's colour segmentation knows both tones, so a
  background never shows up as an object colour.
- The palette is chosen so the colours stay far apart in CIELAB even under the world's lighting change (see
  `judge_palette.py`); changing an RGB value here changes what the judge accepts.
"""

from __future__ import annotations

import re

RGB = tuple[int, int, int]

COLORS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (30, 100, 235),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "purple": (150, 50, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "pink": (250, 140, 200),
    "cyan": (40, 215, 225),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond")
SIZES: tuple[str, ...] = ("small", "medium", "large")

# Motion ids; a caption writes them through MOTION_PHRASES ("left" -> "moving left").
MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "bouncing", "orbiting", "growing", "shrinking")
MOTION_PHRASES: dict[str, str] = {
    "left": "moving left",
    "right": "moving right",
    "up": "moving up",
    "down": "moving down",
    "bouncing": "bouncing",
    "orbiting": "orbiting",
    "growing": "growing",
    "shrinking": "shrinking",
}
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")

# Background patterns; "solid" is written as no word at all ("on a blue background").
BACKGROUNDS: tuple[str, ...] = ("solid", "gradient", "striped", "checkered")
BACKGROUND_WORDS: dict[str, str] = {"gradient": "gradient", "striped": "striped", "checkered": "checkered"}

# Camera pan directions, written "slow camera pan left". Only horizontal pans: the striped texture is vertical, and a
# pan must be visible on it.
CAMERA: tuple[str, ...] = ("left", "right")
CAMERA_PHRASE = "slow camera pan"

# The lighting change is a slow brightness oscillation, written as one phrase.
LIGHTING: tuple[str, ...] = ("changing light",)
LIGHTING_PHRASE = LIGHTING[0]

# Words that glue the phrases together.
CONNECTIVES: tuple[str, ...] = ("a", "an", "and", "on", "background")

VOCABULARY: frozenset[str] = frozenset(
    [*COLORS, *SHAPES, *SIZES, *DIRECTIONS, *BACKGROUND_WORDS.values(), *CONNECTIVES]
    + [word for phrase in MOTION_PHRASES.values() for word in phrase.split()]
    + CAMERA_PHRASE.split()
    + [word for phrase in LIGHTING for word in phrase.split()]
)

_WORD_PATTERN = re.compile(r"[a-z]+")


def prompt_words(prompt: str) -> list[str]:
    """The lower-case words of a prompt, in order; punctuation and digits separate words and are dropped."""
    return _WORD_PATTERN.findall(prompt.lower())


def unknown_words(prompt: str) -> list[str]:
    """Words of `prompt` outside `VOCABULARY`, each once, in the order they first appear (for the CLI warning)."""
    unknown: list[str] = []
    for word in prompt_words(prompt):
        if word not in VOCABULARY and word not in unknown:
            unknown.append(word)
    return unknown


def shade_of(color: str) -> RGB:
    """The dark tone of a named colour, used by textured and gradient backgrounds.

    Scaling toward black keeps the hue, so the judge still reads the shade as the same colour. Black and white are
    the exceptions: black cannot get darker (its second tone is a dark grey) and white's shade stays light so it is
    never confused with black's.
    """
    if color == "black":
        return (65, 65, 65)
    if color == "white":
        return (195, 195, 195)
    red, green, blue = COLORS[color]
    return (round(red * 0.7), round(green * 0.7), round(blue * 0.7))


def article_for(word: str) -> str:
    """'an' before a vowel sound ("an orange"), otherwise 'a'."""
    return "an" if word[0] in "aeiou" else "a"

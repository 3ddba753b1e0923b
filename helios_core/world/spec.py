"""What a prompt says about a scene, without where things start: `ObjectSpec`, `SceneSpec`, and `PromptError`.

A `SceneSpec` is what `parse_prompt` recovers from a caption and what `caption` writes; a full `Scene` (scene.py)
adds start positions, phases and a seed. Keeping the two apart is what makes the round trip caption -> parse exact.

Invariants (checked in `SceneSpec.__post_init__`, so every spec the world builds or parses obeys them):
- one to three objects;
- the objects' colours are all different and differ from the background colour, because the judge finds each
  object by its colour and ignores the background colour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from helios_core.errors import UserInputError
from helios_core.world.vocabulary import BACKGROUNDS, CAMERA, COLORS, MOTIONS, SHAPES, SIZES

MAX_OBJECTS = 3


class PromptError(UserInputError, ValueError):
    """A prompt the world cannot turn into a scene (and so cannot judge).

    A ValueError for callers that only know the world's API, and a UserInputError so the CLI prints it as one line.
    """


@dataclass(frozen=True)
class ObjectSpec:
    """One object as a prompt names it: 'a small red circle moving left'."""

    shape: str
    color: str
    size: str
    motion: str

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.shape, SHAPES, "shape"),
            (self.color, COLORS, "colour"),
            (self.size, SIZES, "size"),
            (self.motion, MOTIONS, "motion"),
        ):
            if value not in allowed:
                raise PromptError(f"unknown {what} {value!r}; use one of: {', '.join(allowed)}")


@dataclass(frozen=True)
class SceneSpec:
    """A scene as a prompt names it: objects, background pattern and colour, camera pan, lighting change."""

    objects: tuple[ObjectSpec, ...]
    background: str
    background_color: str
    camera_pan: str | None = None
    lighting_change: bool = False

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= MAX_OBJECTS:
            raise PromptError(f"a scene has 1 to {MAX_OBJECTS} objects, this prompt names {len(self.objects)}")
        if self.background not in BACKGROUNDS:
            raise PromptError(f"unknown background {self.background!r}; use one of: {', '.join(BACKGROUNDS)}")
        if self.background_color not in COLORS:
            raise PromptError(f"unknown background colour {self.background_color!r}")
        if self.camera_pan is not None and self.camera_pan not in CAMERA:
            raise PromptError(f"unknown camera pan {self.camera_pan!r}; use one of: {', '.join(CAMERA)}")
        colors = [obj.color for obj in self.objects]
        if len(set(colors)) != len(colors):
            raise PromptError("two objects share a colour; give each object its own colour")
        if self.background_color in colors:
            raise PromptError(
                f"a {self.background_color} object on a {self.background_color} background cannot be seen; "
                "pick another background colour"
            )


def swap_first_object_and_background_colors(spec: SceneSpec) -> SceneSpec:
    """The same scene with its first object's colour and the background's exchanged: a caption of the same words in
    other roles ("a red circle ... on a blue background" -> "a blue circle ... on a red background"). Still a valid
    spec: the colours stay distinct."""
    first = replace(spec.objects[0], color=spec.background_color)
    return replace(spec, objects=(first, *spec.objects[1:]), background_color=spec.objects[0].color)

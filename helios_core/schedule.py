"""Timed prompt files for `--schedule FILE`: which prompt holds from which second of the video.

Two formats, chosen by the file's suffix:
- `.yaml`, `.yml`, `.json`: a list of `{start: 12.5 or "0:12.5", prompt: "..."}` mappings;
- anything else: text, one segment per line, `START PROMPT` (`0:00 a fox running`, `12.5 the fox jumps`); blank
  lines and lines starting with `#` are skipped.

A start is seconds (`12.5`) or a clock (`mm:ss`, `h:mm:ss`, seconds may have a fraction). Invariants of the result:
at least one segment, the first starts at 0, starts strictly increase in file order, no prompt is empty. Every problem
is a `ConfigError` naming the file and the line, because a schedule is usually hand-written.

YAML is parsed with PyYAML, as `presets.py` does: JSON is a subset of YAML, so one parser gives line numbers for both.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from helios_core.user_files import read_user_text
from helios_core.errors import ConfigError
from helios_core.request import PromptSegment

STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")  # [h:]mm:ss[.fff]


def parse_start(text: str | float | int, where: str) -> float:
    """`"1:02.5"` -> 62.5, `"12"` -> 12.0, `7` -> 7.0; anything else is a ConfigError mentioning `where`."""
    if isinstance(text, bool):
        raise ConfigError(f"{where}: start must be seconds or mm:ss, got {text!r}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        raw = str(text).strip()
        clock = _CLOCK.match(raw)
        if clock:
            hours, minutes, secs = clock.groups()
            if float(secs) >= 60 or (hours is not None and int(minutes) >= 60):
                raise ConfigError(f"{where}: '{raw}' is not a valid time (seconds and minutes must be under 60)")
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
        else:
            try:
                seconds = float(raw)
            except ValueError:
                raise ConfigError(f"{where}: start must be seconds or mm:ss, got '{raw}'") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{where}: start must be a non-negative time, got {text!r}")
    return seconds


def format_clock(seconds: float) -> str:
    """62.5 -> "1:02.5" (for messages that point back at the file)."""
    minutes, secs = divmod(seconds, 60)
    secs_text = f"{secs:04.1f}" if secs != int(secs) else f"{int(secs):02d}"
    return f"{int(minutes)}:{secs_text}"


def load_schedule(path: Path) -> tuple[PromptSegment, ...]:
    """Read and check a schedule file (format by suffix, see the module docstring)."""
    text = read_user_text(path, "schedule file")
    if path.suffix.lower() in STRUCTURED_SUFFIXES:
        entries = _structured_entries(text, path)
    else:
        entries = _text_entries(text, path)
    return _checked(entries, path)


def _text_entries(text: str, path: Path) -> list[tuple[int, float, str]]:
    entries = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        start_text, *rest = stripped.split(maxsplit=1)
        prompt = rest[0] if rest else ""
        where = f"schedule file {path} line {line_number}"
        start = parse_start(start_text, where)
        entries.append((line_number, start, prompt.strip()))
    return entries


def _structured_entries(text: str, path: Path) -> list[tuple[int, float, str]]:
    try:
        data = yaml.safe_load(text)
        # A second pass for the nodes: they carry each item's line number, which safe_load's plain data loses.
        root = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"schedule file {path} is not valid YAML/JSON{where}") from None
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise ConfigError(f"schedule file {path} must hold a list of {{start: ..., prompt: ...}} items")
    entries = []
    for item, node in zip(data, root.value, strict=True):
        line_number = node.start_mark.line + 1
        where = f"schedule file {path} line {line_number}"
        entries.append((line_number, *_structured_item(item, where)))
    return entries


def _structured_item(item: Any, where: str) -> tuple[float, str]:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: each item must be a mapping like {{start: 0, prompt: ...}}")
    unknown = sorted(set(item) - {"start", "prompt"})
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(map(str, unknown))} (expected start and prompt)")
    if "start" not in item:
        raise ConfigError(f"{where}: missing 'start'")
    prompt = item.get("prompt")
    if not isinstance(prompt, str):
        raise ConfigError(f"{where}: 'prompt' must be text")
    return parse_start(item["start"], where), prompt.strip()


def _checked(entries: list[tuple[int, float, str]], path: Path) -> tuple[PromptSegment, ...]:
    if not entries:
        raise ConfigError(f"schedule file {path} holds no prompts")
    previous: float | None = None
    for line_number, start, prompt in entries:
        where = f"schedule file {path} line {line_number}"
        if not prompt:
            raise ConfigError(f"{where}: the prompt is empty")
        if previous is None and start != 0:
            # Shifting the first prompt to 0 s silently would hide a typo; say it instead.
            raise ConfigError(f"{where}: the first prompt must start at 0:00, not {format_clock(start)}")
        if previous is not None and start <= previous:
            raise ConfigError(
                f"{where}: start {format_clock(start)} must come after the previous one ({format_clock(previous)})"
            )
        previous = start
    return tuple(PromptSegment(start, prompt) for _, start, prompt in entries)


def check_schedule_fits(segments: tuple[PromptSegment, ...], video_seconds: float, source: str) -> None:
    """A segment starting at or after the end of the video would never be shown: almost always a units mistake."""
    for segment in segments:
        if segment.start_second > 0 and segment.start_second >= video_seconds:
            raise ConfigError(
                f"{source}: the prompt at {format_clock(segment.start_second)} starts after the end of the "
                f"{video_seconds:.1f} s video (make the video longer or move the prompt)"
            )

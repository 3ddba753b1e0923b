"""Batch prompt files for `--prompts FILE`: one video per item, with safe output names and resume.

Two formats:
- plain text: one prompt per line; blank lines and lines starting with `#` are skipped;
- JSONL (suffix `.jsonl`/`.ndjson`, or a first item line starting with `{`): one object per line with `prompt` and
  optional `seconds`, `frames`, `seed`, `output` (a file name), `image` (a path, relative to the prompts file's
  folder) and `set` (config overrides, `{"sampler.steps": [2, 2, 2]}` or nested sections).

Invariants:
- every item's `output_name` is a bare file name ending in `.mp4`: names from the file can never place a file outside
  the output folder chosen on the command line (absolute paths, `..`, path separators and hidden names are refused),
  and no two items share a name;
- items without a name get `NNNN-<prompt slug>.mp4` (NNNN = 1-based position among the items), which is stable
  across runs, so a re-run finds the finished videos and skips them (resume after a crash);
- problems with the file itself are `ConfigError`s naming the file and line, raised before anything runs.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helios_core.user_files import read_user_text
from helios_core.errors import ConfigError

JSONL_SUFFIXES = (".jsonl", ".ndjson")
ITEM_FIELDS = ("prompt", "seconds", "frames", "seed", "output", "image", "set")
MAX_SLUG_CHARS = 48


@dataclass(frozen=True)
class BatchItem:
    index: int  # 1-based position among the items (not the line number)
    line: int  # line in the prompts file, for messages
    prompt: str
    output_name: str  # a bare, safe file name like "0001-a-fox-running.mp4"
    seconds: float | None = None
    frames: int | None = None
    seed: int | None = None
    image: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted config keys -> plain values


def slugify(text: str, max_chars: int = MAX_SLUG_CHARS) -> str:
    """"A fox, running!" -> "a-fox-running": ASCII letters, digits and single dashes; "video" when nothing is left.

    Written by hand (a dozen lines) rather than adding a dependency such as python-slugify for it."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_chars:
        cut = slug[:max_chars]
        # End on a whole word when one fits: "a-fox-runn" reads worse than "a-fox".
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return slug or "video"


def safe_output_name(name: str, where: str) -> str:
    """Check a user-given output name and add `.mp4`; refuse anything that is not a plain file name."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'output' must be a non-empty file name")
    if "/" in name or "\\" in name or name.startswith("~"):
        raise ConfigError(f"{where}: output name '{name}' must be a plain file name, without folders")
    if name in (".", "..") or name.startswith(".") or ".." in name:
        raise ConfigError(f"{where}: output name '{name}' must not start with '.' or contain '..'")
    if any(unicodedata.category(ch).startswith("C") for ch in name) or ":" in name:
        raise ConfigError(f"{where}: output name '{name}' contains control characters or ':'")
    suffix = Path(name).suffix.lower()
    if suffix == ".mp4":
        return name
    if suffix in (".mkv", ".mov", ".avi", ".webm", ".gif", ".json"):
        raise ConfigError(f"{where}: output name '{name}' must end in .mp4 (or have no suffix)")
    return f"{name}.mp4"


def load_prompts_file(path: Path) -> list[BatchItem]:
    """Parse a prompts file (see the module docstring); the list is never empty."""
    text = read_user_text(path, "prompts file")
    lines = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#")
    ]
    if not lines:
        raise ConfigError(f"prompts file {path} holds no prompts")
    is_jsonl = path.suffix.lower() in JSONL_SUFFIXES or lines[0][1].startswith("{")
    items = []
    for index, (number, line) in enumerate(lines, start=1):
        where = f"prompts file {path} line {number}"
        if is_jsonl:
            items.append(_jsonl_item(line, index, number, where, path.parent))
        else:
            items.append(BatchItem(index, number, line, f"{index:04d}-{slugify(line)}.mp4"))
    _check_unique_names(items, path)
    return items


def _jsonl_item(line: str, index: int, number: int, where: str, base_dir: Path) -> BatchItem:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: each line must be a JSON object like {{\"prompt\": \"...\"}}")
    unknown = sorted(set(data) - set(ITEM_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(ITEM_FIELDS)})")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError(f"{where}: 'prompt' must be non-empty text")
    seconds = data.get("seconds")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ConfigError(f"{where}: 'seconds' must be a positive number, got {seconds!r}")
    frames = _optional_int(data, "frames", where, minimum=1)
    if seconds is not None and frames is not None:
        raise ConfigError(f"{where}: give 'seconds' or 'frames', not both")
    seed = _optional_int(data, "seed", where, minimum=0)
    overrides = data.get("set") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: 'set' must be an object of config keys, like {{\"sampler.steps\": [2, 2, 2]}}")
    if any(str(key).split(".")[0] == "runtime" for key in _dotted(overrides)):
        # The model loads once for the whole batch, so device/dtype/offload cannot change per item.
        raise ConfigError(f"{where}: runtime settings cannot change per item; pass them on the command line")
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        raise ConfigError(f"{where}: 'image' must be a file path")
    output = data.get("output")
    name = safe_output_name(output, where) if output is not None else f"{index:04d}-{slugify(prompt)}.mp4"
    return BatchItem(
        index=index,
        line=number,
        prompt=prompt.strip(),
        output_name=name,
        seconds=float(seconds) if seconds is not None else None,
        frames=frames,
        seed=seed,
        image=(base_dir / Path(image).expanduser()) if image is not None else None,
        overrides=_dotted(overrides),
    )


def _optional_int(data: dict[str, Any], key: str, where: str, minimum: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def _dotted(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_unique_names(items: list[BatchItem], path: Path) -> None:
    seen: dict[str, int] = {}
    for item in items:
        key = item.output_name.lower()  # case-insensitive file systems (macOS, Windows) would collide too
        if key in seen:
            raise ConfigError(
                f"prompts file {path} line {item.line}: output name '{item.output_name}' is already used on "
                f"line {seen[key]}"
            )
        seen[key] = item.line


def split_done(items: list[BatchItem], output_dir: Path) -> tuple[list[BatchItem], list[BatchItem]]:
    """(pending, done): an item is done when its final `.mp4` exists. A `.partial.mp4` left by a crash does not
    count, so that item runs again."""
    pending, done = [], []
    for item in items:
        (done if (output_dir / item.output_name).is_file() else pending).append(item)
    return pending, done

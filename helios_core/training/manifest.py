"""Read a training-data manifest (JSONL) into checked entries, and name each entry's output shard safely.

One line per video: {"path": "clips/a.mp4", "caption": "...", optional "start"/"end" (seconds), "crop": [x0, x1,
y0, y1] (source pixels), "fps" (overrides the file's rate), "id" (the shard's name)}. Paths are relative to the
manifest's folder. A malformed line is not fatal: it becomes a `ManifestProblem` the preparation report lists.

Invariant: nothing read from the manifest ever decides where a file is written. Shards are named by the entry's
`id` only if it is a plain file-name stem (letters, digits, `-`, `_`, `.`, not starting with a dot), else by a hash
of the entry; `shard_path` re-checks that the result lies inside the output folder.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from helios_core.errors import MediaError, OutputPathError

_SAFE_STEM = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class ManifestEntry:
    line: int  # 1-based line number in the manifest, for messages
    source: Path  # resolved video path
    caption: str
    start: float | None
    end: float | None
    crop: tuple[int, int, int, int] | None  # x0, x1, y0, y1
    fps: float | None
    key: str  # stable identity of the entry: what the index records as done

    @property
    def shard_stem(self) -> str:
        return self.key


@dataclass(frozen=True)
class ManifestProblem:
    line: int
    source: str
    reason: str


def read_manifest(manifest: Path) -> tuple[list[ManifestEntry], list[ManifestProblem]]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise MediaError(f"manifest {manifest} not found; pass a JSONL file with one {{\"path\", \"caption\"}} per line")
    entries: list[ManifestEntry] = []
    problems: list[ManifestProblem] = []
    seen: set[str] = set()
    for number, text in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            entry = _parse_line(manifest.parent, number, text)
        except ValueError as error:
            problems.append(ManifestProblem(number, _raw_path(text), str(error)))
            continue
        if entry.key in seen:
            problems.append(ManifestProblem(number, str(entry.source), f"duplicate of an earlier line (id {entry.key})"))
            continue
        seen.add(entry.key)
        entries.append(entry)
    return entries, problems


def _raw_path(text: str) -> str:
    try:
        return str(json.loads(text).get("path", "?"))
    except (json.JSONDecodeError, AttributeError):
        return "?"


def _parse_line(root: Path, number: int, text: str) -> ManifestEntry:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"line {number} is not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"line {number} must be a JSON object")  # noqa: TRY004 - reported as a manifest problem
    # "meta": the writer's own notes (the world dataset's scene seed and split), carried but never interpreted. Any
    # other unknown key is most likely a typo ("strat") that would silently change what gets prepared.
    unknown = set(data) - {"path", "caption", "start", "end", "crop", "fps", "id", "meta"}
    if unknown:
        raise ValueError(f"line {number} has unknown key(s) {sorted(unknown)}")
    path, caption = data.get("path"), data.get("caption")
    if not isinstance(path, str) or not path:
        raise ValueError(f"line {number} needs a \"path\" string")
    if not isinstance(caption, str) or not caption.strip():
        raise ValueError(f"line {number} needs a non-empty \"caption\" string")
    start, end, fps = (_number(data, name, number) for name in ("start", "end", "fps"))
    if start is not None and end is not None and end <= start:
        raise ValueError(f"line {number}: end ({end}) must be after start ({start})")
    if fps is not None and fps <= 0:
        raise ValueError(f"line {number}: fps must be positive")
    crop = data.get("crop")
    if crop is not None:
        if not (isinstance(crop, list) and len(crop) == 4 and all(isinstance(v, int) and v >= 0 for v in crop)):
            raise ValueError(f"line {number}: crop must be [x0, x1, y0, y1] non-negative integers")
        if crop[1] <= crop[0] or crop[3] <= crop[2]:
            raise ValueError(f"line {number}: crop [x0, x1, y0, y1] needs x1 > x0 and y1 > y0")
        crop = tuple(crop)
    identity = {k: data.get(k) for k in ("path", "caption", "start", "end", "crop", "fps")}
    key = data.get("id")
    if key is not None:
        if not isinstance(key, str) or not _SAFE_STEM.match(key) or ".." in key:
            raise ValueError(f"line {number}: id {key!r} must be a plain name (letters, digits, '-', '_', '.')")
    else:
        key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return ManifestEntry(number, (root / path).resolve(), caption.strip(), start, end, crop, fps, key)


def _number(data: dict, name: str, number: int) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"line {number}: {name} must be a non-negative number, got {value!r}")
    return float(value)


def shard_path(out_dir: Path, entry: ManifestEntry) -> Path:
    """`out_dir/shards/<stem>.safetensors`, refusing anything that would resolve outside `out_dir`."""
    root = Path(out_dir).resolve()
    path = (root / "shards" / f"{entry.shard_stem}.safetensors").resolve()
    if not path.is_relative_to(root / "shards"):  # unreachable with _SAFE_STEM; kept as the last line of defence
        raise OutputPathError(f"manifest line {entry.line}: shard name {entry.shard_stem!r} escapes {root}")
    return path

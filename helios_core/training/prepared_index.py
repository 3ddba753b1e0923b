"""The index of a prepared data folder: `index.jsonl` (one record per prepared or skipped video) + `prepare.json`.

Layout of a prepared folder:

    prepare.json                 the settings it was prepared with (size, fps, chunk size, model); fixed once written
    index.jsonl                  {"key", "shard", "caption", "source", "num_chunks"} or {"key", "source", "skipped"}
    shards/<key>.safetensors     latents [num_chunks, C, 9, h, w], text [L, D], first_frame [C, 1, h, w]
    negative_text.safetensors    the default negative prompt's embedding (teachers with CFG need it)

Records are only ever appended; when a key appears more than once the last record wins, so a resumed run that
retries a video once skipped simply appends its new outcome.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helios_core.errors import ConfigError, MediaError

INDEX_FILE = "index.jsonl"
SETTINGS_FILE = "prepare.json"
NEGATIVE_TEXT_FILE = "negative_text.safetensors"


def read_index(out_dir: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(prepared records by key, in first-seen order; skipped records whose key was never prepared later)."""
    path = Path(out_dir) / INDEX_FILE
    latest: dict[str, dict[str, Any]] = {}
    loose_skips: list[dict[str, Any]] = []  # manifest lines so broken they have no key
    if path.is_file():
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                # A run killed mid-write can leave a torn last line; its shard is simply redone.
                continue
            if not isinstance(record, dict):
                raise MediaError(f"{path} line {number} is not a JSON object; the index is damaged")
            if record.get("key") is None:
                loose_skips.append(record)
            else:
                latest[record["key"]] = record
    prepared = {k: r for k, r in latest.items() if "skipped" not in r}
    skipped = loose_skips + [r for r in latest.values() if "skipped" in r]
    return prepared, skipped


def append_record(out_dir: Path, record: dict[str, Any]) -> None:
    with (Path(out_dir) / INDEX_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


def check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Write the settings on first use; later runs must use the same ones (mixed sizes in one folder are a bug)."""
    path = Path(out_dir) / SETTINGS_FILE
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
        if diff:
            shown = ", ".join(f"{k}: {saved.get(k)!r} -> {settings.get(k)!r}" for k in diff)
            raise ConfigError(f"{out_dir} was prepared with other settings ({shown}); use a new --out folder")
        return
    path.write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")


def read_settings(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / SETTINGS_FILE
    if not path.is_file():
        raise MediaError(f"{out_dir} is not a prepared data folder (no {SETTINGS_FILE}); run `helios data prepare`")
    return json.loads(path.read_text(encoding="utf-8"))

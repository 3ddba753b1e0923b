"""Prompts files for batches: both formats, safe output names, resume detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helios_core.batch import BatchItem, load_prompts_file, safe_output_name, slugify, split_done
from helios_core.errors import ConfigError


def write_jsonl(path: Path, *items: dict) -> Path:
    path.write_text("\n".join(json.dumps(item) for item in items) + "\n")
    return path


def test_plain_text_file(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("# comment\nA fox, running!\n\n   a café at night  \n")
    items = load_prompts_file(path)
    assert [(i.index, i.line, i.prompt, i.output_name) for i in items] == [
        (1, 2, "A fox, running!", "0001-a-fox-running.mp4"),
        (2, 4, "a café at night", "0002-a-cafe-at-night.mp4"),
    ]


def test_jsonl_file_with_options(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "jobs.jsonl",
        {"prompt": "a fox", "seconds": 5, "seed": 3, "output": "fox", "image": "pics/fox.png",
         "set": {"sampler": {"steps": [2, 2, 2]}, "video.fps": 12}},
        {"prompt": "a cat", "frames": 40},
    )
    fox, cat = load_prompts_file(path)
    assert fox == BatchItem(
        index=1, line=1, prompt="a fox", output_name="fox.mp4", seconds=5.0, seed=3,
        image=tmp_path / "pics" / "fox.png", overrides={"sampler.steps": [2, 2, 2], "video.fps": 12},
    )
    assert cat.frames == 40 and cat.output_name == "0002-a-cat.mp4" and cat.seed is None


def test_jsonl_detected_without_suffix(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "jobs.txt", {"prompt": "a fox", "output": "x.mp4"})
    assert load_prompts_file(path)[0].output_name == "x.mp4"


@pytest.mark.parametrize(
    "name", ["../escape", "/etc/passwd", "sub/dir", "a\\b", "..", ".hidden", "", "~root", "C:evil", "x.mkv", "a\x00b"]
)
def test_unsafe_output_names_are_refused(tmp_path: Path, name: str) -> None:
    path = write_jsonl(tmp_path / "jobs.jsonl", {"prompt": "ok"}, {"prompt": "a fox", "output": name})
    with pytest.raises(ConfigError, match="line 2"):
        load_prompts_file(path)


def test_safe_output_name_adds_suffix() -> None:
    assert safe_output_name("my clip", "here") == "my clip.mp4"
    assert safe_output_name("v1.2", "here") == "v1.2.mp4"
    assert safe_output_name("clip.MP4", "here") == "clip.MP4"


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (({"prompt": "a", "output": "x"}, {"prompt": "b", "output": "X.mp4"}), "already used on line 1"),
        (({"prompt": "a", "seconds": 2, "frames": 3},), "not both"),
        (({"prompt": ""},), "'prompt' must be non-empty"),
        (({"prompt": "a", "colour": "red"},), "unknown field"),
        (({"prompt": "a", "seconds": -1},), "'seconds' must be a positive"),
        (({"prompt": "a", "seed": 1.5},), "'seed' must be an integer"),
        (({"prompt": "a", "set": {"runtime.device": "cpu"}},), "runtime settings"),
        (({"prompt": "a", "set": [1]},), "'set' must be an object"),
    ],
)
def test_bad_jsonl_items(tmp_path: Path, items: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_prompts_file(write_jsonl(tmp_path / "jobs.jsonl", *items))


def test_bad_json_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": oops}\n')
    with pytest.raises(ConfigError, match="jobs.jsonl line 2: not valid JSON"):
        load_prompts_file(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match="holds no prompts"):
        load_prompts_file(tmp_path / "empty.txt")
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompts_file(tmp_path / "missing.txt")


def test_slugify() -> None:
    assert slugify("A Fox -- Running!!") == "a-fox-running"
    assert slugify("Ünïcödé straße") == "unicode-strae"
    assert slugify("!!!") == "video"
    long = slugify("word " * 40)
    assert len(long) <= 48 and not long.endswith("-") and long.startswith("word-word")


def test_split_done(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("a\nb\nc\n")
    items = load_prompts_file(path)
    (tmp_path / "0001-a.mp4").write_bytes(b"done")
    (tmp_path / "0002-b.partial.mp4").write_bytes(b"crashed")
    pending, done = split_done(items, tmp_path)
    assert [i.prompt for i in done] == ["a"]
    assert [i.prompt for i in pending] == ["b", "c"]

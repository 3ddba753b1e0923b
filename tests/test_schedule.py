"""Timed prompt files: text and YAML/JSON formats, clock parsing, and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helios_core.errors import ConfigError
from helios_core.request import PromptSegment
from helios_core.schedule import check_schedule_fits, format_clock, load_schedule, parse_start


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("12.5", 12.5), ("0:00", 0.0), ("1:02.5", 62.5), ("10:00", 600.0), ("1:00:05", 3605.0), (7, 7.0)],
)
def test_parse_start(text, seconds) -> None:
    assert parse_start(text, "here") == seconds


@pytest.mark.parametrize("text", ["soon", "-1", "1:75", "1:2:3:4", "nan", "inf", True])
def test_parse_start_rejects(text) -> None:
    with pytest.raises(ConfigError, match="here"):
        parse_start(text, "here")


def test_text_schedule(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("# the story\n0:00 a fox running\n\n12.5\tthe fox jumps\n1:02 the fox sleeps  \n")
    assert load_schedule(path) == (
        PromptSegment(0.0, "a fox running"),
        PromptSegment(12.5, "the fox jumps"),
        PromptSegment(62.0, "the fox sleeps"),
    )


def test_yaml_and_json_schedules(tmp_path: Path) -> None:
    yaml_path = tmp_path / "story.yaml"
    yaml_path.write_text('- start: 0\n  prompt: a fox\n- start: "0:10"\n  prompt: the fox jumps\n')
    json_path = tmp_path / "story.json"
    json_path.write_text(json.dumps([{"start": 0, "prompt": "a fox"}, {"start": 10, "prompt": "the fox jumps"}]))
    expected = (PromptSegment(0.0, "a fox"), PromptSegment(10.0, "the fox jumps"))
    assert load_schedule(yaml_path) == expected
    assert load_schedule(json_path) == expected


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.txt", "0:00 a fox\nsoon the fox jumps\n", "a.txt line 2"),
        ("b.txt", "0:00 a fox\n0:10 jumps\n0:05 back in time\n", "b.txt line 3"),
        ("c.txt", "0:03 a fox\n", "must start at 0:00"),
        ("d.txt", "0:00 a fox\n0:04\n", "d.txt line 2: the prompt is empty"),
        ("e.txt", "# only a comment\n", "holds no prompts"),
        ("f.yaml", "- start: 0\n  prompt: a fox\n- start: 5\n  promt: typo\n", "f.yaml line 3"),
        ("g.yaml", "start: 0\nprompt: a fox\n", "must hold a list"),
        ("h.yaml", "- start: 0\n  prompt: [unclosed\n", "not valid YAML/JSON"),
        ("i.json", '[{"start": 0, "prompt": "a"},\n {"prompt": "b"}]', "i.json line 2: missing 'start'"),
    ],
)
def test_schedule_errors_name_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_schedule(path)


def test_missing_schedule_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_schedule(tmp_path / "nope.txt")


def test_schedule_must_fit_the_video() -> None:
    segments = (PromptSegment(0.0, "a"), PromptSegment(30.0, "b"))
    check_schedule_fits(segments, 31.0, "--schedule")
    with pytest.raises(ConfigError, match="0:30"):
        check_schedule_fits(segments, 30.0, "--schedule")
    assert format_clock(62.5) == "1:02.5"

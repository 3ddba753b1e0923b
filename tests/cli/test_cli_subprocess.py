"""The real entry point in a child process: `python -m helios_cli` help, version and a user error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import helios_core

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helios_cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("generate", "animate", "extend", "presets", "train", "bench"):
        assert command in result.stdout
    assert "Usage: helios" in result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"helios {helios_core.__version__}"


def test_user_error_is_one_line_without_torch(tmp_path: Path) -> None:
    result = run_cli("generate", "a fox", "--preset", "nope", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown preset 'nope' (available: ")
    assert result.stdout == ""


def test_cli_import_does_not_load_torch() -> None:
    # `helios --help` and every user error must stay fast: torch is imported only when a model is needed.
    code = "import sys, helios_cli.app; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr

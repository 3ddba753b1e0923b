"""Shared fixtures: a tiny random model folder, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from helios_core.model.tiny import write_tiny_model_folder

    return write_tiny_model_folder(tmp_path_factory.mktemp("models") / "tiny", seed=0, scheduler="dmd")

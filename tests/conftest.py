"""Shared fixtures: a tiny random model folder, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from helios_core.model.tiny import write_tiny_model_folder

    return write_tiny_model_folder(tmp_path_factory.mktemp("models") / "tiny", seed=0, scheduler="dmd")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models are all overhead: extra threads only add synchronisation (about 10x slower on a busy 2-core box)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

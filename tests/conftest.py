"""Shared fixtures: a tiny random model folder, written once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Without a GPU, tests/kernels runs the Triton kernels under Triton's CPU interpreter, which must be chosen before
# anything imports triton (diffusers does, while test modules are collected); it only changes what @triton.jit
# returns, and nothing else in the suite runs Triton on a CPU.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


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

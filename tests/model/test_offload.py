"""runtime.offload checks (helios_core.model.offload), which run before any weights load."""

from __future__ import annotations

import pytest
import torch

from helios_core.errors import ConfigError
from helios_core.model.offload import require_offload_choice


def test_group_offload_with_compile_is_refused_up_front() -> None:
    # Measured on an H100: compiling blocks that carry diffusers' offload hooks fails inside the first forward.
    with pytest.raises(ConfigError, match="do not combine"):
        require_offload_choice("group", True, torch.device("cuda"))


def test_group_offload_needs_a_gpu_and_none_needs_nothing() -> None:
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        require_offload_choice("group", False, torch.device("cpu"))
    require_offload_choice("none", True, torch.device("cpu"))  # raises nothing
    require_offload_choice("group", False, torch.device("cuda"))  # raises nothing: allowed on a GPU

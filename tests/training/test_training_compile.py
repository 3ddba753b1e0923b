"""`loop.compile`: the base and mid stages with the transformer's blocks compiled train like the eager path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import PAIRED_RUN, final_trainables

from helios_core.errors import ConfigError
from helios_core.training import load_train_config, train

TINY = {**PAIRED_RUN, "loop.max_steps": 2}


def test_compiled_blocks_train_like_the_eager_path(tiny_model_dir: Path, prepared_dir: Path, tmp_path: Path):
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    eager = train(load_train_config("base", TINY), out_dir=tmp_path / "eager", **paths)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = train(load_train_config("base", {**TINY, "loop.compile": True}), out_dir=tmp_path / "compiled", **paths)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # the blocks really went through dynamo
    torch.testing.assert_close(torch.tensor(compiled.losses), torch.tensor(eager.losses), rtol=1e-4, atol=1e-6)
    left, right = final_trainables(tmp_path / "compiled"), final_trainables(tmp_path / "eager")
    assert left.keys() == right.keys() and left  # compiling in place keeps the parameter names
    for name in left:
        torch.testing.assert_close(left[name], right[name], rtol=1e-4, atol=1e-5)
    torch._dynamo.reset()


def test_compile_is_refused_for_the_distilled_stage():
    with pytest.raises(ConfigError, match="loop.compile applies to the base and mid stages"):
        load_train_config("distilled", {"loop.compile": True}).validate()

"""Two DDP processes at batch 1 train exactly like one process at batch 2 (accelerate on gloo, CPU).

The per-sample draws (history layout and corruption, caption dropout, sigma, noise) come from (seed, step, global
sample index) and mid's pyramid level from (seed, step), so splitting the global batch changes nothing but the order
of float sums (DDP averages two gradients instead of one loss over two samples). Both stages run in one launch of
two spawned workers (`launch_workers` gives them torchrun's environment, which accelerate reads), three steps each.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helios_core.distributed.launch import launch_workers


def _training_fixtures():
    """tests/training/conftest.py's tiny prepared data set (its fixtures are not visible from this folder)."""
    path = Path(__file__).resolve().parents[1] / "training" / "conftest.py"
    spec = importlib.util.spec_from_file_location("training_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_fixtures = _training_fixtures()
video_dir, prepared_dir = _fixtures.video_dir, _fixtures.prepared_dir  # registered as this module's fixtures

STAGES = ("base", "mid")
STEPS = 3
# Caption dropout and history drop/corruption are on, so every kind of per-sample draw is exercised.
SETTINGS = {"lora.rank": 4, "lora.alpha": 4, "optim.lr": 1e-3, "optim.warmup_steps": 0, "loop.max_steps": STEPS,
            "loop.log_every": 1, "loop.checkpoint_every": 100, "loop.gradient_checkpointing": False,
            "drop.caption_prob": 0.5, "ema.enabled": False}


def _config(stage: str, batch_size: int):
    from helios_core.training import load_train_config

    return load_train_config(stage, {**SETTINGS, "loop.batch_size": batch_size})


def train_worker(paths: tuple[str, str, str]) -> int:
    """One rank of the two-process runs: batch 1 per rank, each stage into its own folder."""
    from helios_core.training import train

    torch.set_num_threads(1)
    model_dir, data_dir, out_root = (Path(p) for p in paths)
    for stage in STAGES:
        train(_config(stage, 1), model_path=model_dir, data_dir=data_dir, out_dir=out_root / stage)
    return 0


def _run(out_dir: Path, world_size: int) -> tuple[list[float], dict[str, torch.Tensor]]:
    """The logged per-step losses and the final checkpoint's trainable weights."""
    losses = [json.loads(line)["loss"] for line in (out_dir / "log.jsonl").read_text().splitlines()]
    final = sorted((out_dir / "checkpoints").glob("step_*"))[-1]
    assert json.loads((final / "state.json").read_text())["world_size"] == world_size
    return losses, load_file(str(final / "trainable.safetensors"))


def test_two_processes_at_batch_one_match_one_process_at_batch_two(tiny_model_dir: Path, prepared_dir: Path,
                                                                   tmp_path: Path) -> None:
    from helios_core.training import train

    two = tmp_path / "two"
    assert launch_workers(train_worker, (str(tiny_model_dir), str(prepared_dir), str(two)), 2) == [0, 0]
    for stage in STAGES:
        train(_config(stage, 2), model_path=tiny_model_dir, data_dir=prepared_dir, out_dir=tmp_path / "one" / stage)
        one_losses, one_weights = _run(tmp_path / "one" / stage, 1)
        two_losses, two_weights = _run(two / stage, 2)  # really DDP
        assert len(one_losses) == STEPS
        assert two_losses == pytest.approx(one_losses, rel=1e-4), stage
        assert one_weights.keys() == two_weights.keys() and one_weights
        for name, weight in one_weights.items():
            torch.testing.assert_close(two_weights[name], weight, rtol=1e-4, atol=1e-6, msg=f"{stage} {name}")

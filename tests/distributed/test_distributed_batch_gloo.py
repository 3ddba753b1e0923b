"""`helios generate --prompts FILE --gpus 2 --device cpu` through the real launcher and batch workers (gloo).

The engine is a small fake (flat grey frames, real mp4 files through run_to_file), installed in each spawned worker
by `fake_worker`, so the test exercises the launch, the rank-0 resume decision, the i % N sharding, the summary
gathering and the exit code, in seconds. Each fake generate appends its prompt to a per-rank log.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from helios_cli.console import Output
from helios_cli.gpus import BatchSpec, batch_worker, run_prompts_on_gpus
from helios_cli.options import CommonOptions
from helios_core.distributed.launch import launch_workers
from helios_core.request import ChunkResult

CHUNK = 33


class FakeEngine:
    model_name = "fake"
    log_dir: Path

    @classmethod
    def check_request(cls, model_path, request) -> None:
        request.segments()

    @classmethod
    def load(cls, model_path, runtime) -> FakeEngine:
        return cls()

    def plan(self, request) -> tuple[int, int]:
        frames = request.config.video.requested_pixel_frames
        return math.ceil(frames / CHUNK), frames

    def generate(self, request):
        with open(self.log_dir / f"rank{os.environ['RANK']}.log", "a") as log:
            log.write(request.prompt + "\n")
        if "boom" in request.prompt:
            raise RuntimeError("told to fail")
        video = request.config.video
        frames = np.full((video.requested_pixel_frames, video.height, video.width, 3), 90, dtype=np.uint8)
        yield ChunkResult(0, 1, frames, 0, {"total": 0.01}, {"mean": [0.0], "var": [1.0]})


def fake_worker(spec_and_logs: tuple[BatchSpec, str]) -> int:
    import helios_cli.execute

    spec, log_dir = spec_and_logs
    FakeEngine.log_dir = Path(log_dir)
    helios_cli.execute.engine_class = lambda: FakeEngine
    return batch_worker(spec)


def logged(log_dir: Path) -> dict[int, list[str]]:
    return {rank: (log_dir / f"rank{rank}.log").read_text().split("\n")[:-1] if (log_dir / f"rank{rank}.log").exists()
            else [] for rank in range(2)}


def test_two_ranks_share_pending_items_once_and_resume(tmp_path: Path) -> None:
    prompts = tmp_path / "jobs.txt"
    names = [f"a cat number {i}" for i in range(5)]
    prompts.write_text("\n".join(names) + "\n")
    out_dir, logs = tmp_path / "out", tmp_path / "logs"
    out_dir.mkdir()
    logs.mkdir()
    (out_dir / "0002-a-cat-number-1.mp4").write_bytes(b"finished earlier")  # resume: item 2 is done
    common = CommonOptions(height=32, width=32, frames=9, seed=4, device="cpu", gpus=2, output=out_dir, quiet=True)
    assert launch_workers(fake_worker, (BatchSpec(prompts, common), str(logs)), 2) == [0, 0]
    made = logged(logs)
    # Pending items are 1, 3, 4, 5 (in file order); pending position i goes to rank i % 2.
    assert made == {0: [names[0], names[3]], 1: [names[2], names[4]]}
    assert sorted(p.name for p in out_dir.glob("*.mp4")) == [
        "0001-a-cat-number-0.mp4", "0002-a-cat-number-1.mp4", "0003-a-cat-number-2.mp4", "0004-a-cat-number-3.mp4",
        "0005-a-cat-number-4.mp4"]
    assert json.loads((out_dir / "0004-a-cat-number-3.json").read_text())["seed"] == 4

    # A second run finds everything done: nothing is made again.
    for log in logs.iterdir():
        log.unlink()
    assert launch_workers(fake_worker, (BatchSpec(prompts, common), str(logs)), 2) == [0, 0]
    assert logged(logs) == {0: [], 1: []}


def test_a_failed_item_makes_every_rank_exit_1(tmp_path: Path) -> None:
    prompts = tmp_path / "jobs.txt"
    prompts.write_text("a cat\nboom goes the dog\na bird\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    common = CommonOptions(height=32, width=32, frames=9, seed=1, device="cpu", gpus=2, output=tmp_path / "out",
                           quiet=True)
    assert launch_workers(fake_worker, (BatchSpec(prompts, common), str(logs)), 2) == [1, 1]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mp4")) == ["0001-a-cat.mp4", "0003-a-bird.mp4"]


def test_gpus_beyond_this_machine_is_a_user_error(tmp_path: Path) -> None:
    import pytest
    import torch

    from helios_core.errors import ConfigError

    common = CommonOptions(gpus=torch.cuda.device_count() + 2)
    with pytest.raises(ConfigError, match="CUDA GPU"):
        run_prompts_on_gpus(tmp_path / "jobs.txt", common, Output(quiet=True))
    with pytest.raises(ConfigError, match="--offload"):
        run_prompts_on_gpus(tmp_path / "jobs.txt", replace(common, offload="group"), Output(quiet=True))

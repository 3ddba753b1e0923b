"""Data workers (`loop.data_workers`): batches built in worker processes train bit for bit like in-process ones."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import torch

from conftest import PAIRED_RUN, final_trainables

from helios_core.errors import ConfigError
from helios_core.training import load_train_config, train
from helios_core.training import trainer as trainer_module
from helios_core.training.prefetch import BatchPrefetcher

TINY = {**PAIRED_RUN}


def assert_same_tensors(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys() and left
    assert all(torch.equal(left[name], right[name]) for name in left)


@pytest.fixture
def prefetched_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The steps whose batch came from the workers: proves the trainer took the prefetch path."""
    served: list[int] = []

    class Counting(BatchPrefetcher):
        def next(self):
            served.append(self.next_step)
            return super().next()

    monkeypatch.setattr(trainer_module, "BatchPrefetcher", Counting)
    return served


# Caption dropout on in one stage, so the negative prompt's path through the workers is covered too.
@pytest.mark.parametrize("stage, extra", [("base", {"drop.caption_prob": 0.5}), ("mid", {})])
def test_workers_train_bit_identically_to_the_in_process_path(stage: str, extra: dict, tiny_model_dir: Path,
                                                              prepared_dir: Path, tmp_path: Path,
                                                              prefetched_steps: list[int]):
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    settings = {**TINY, **extra, "loop.max_steps": 3}
    in_process = train(load_train_config(stage, {**settings, "loop.data_workers": 0}), out_dir=tmp_path / "a",
                       **paths)
    assert prefetched_steps == []
    workers = train(load_train_config(stage, {**settings, "loop.data_workers": 2}), out_dir=tmp_path / "b", **paths)
    assert prefetched_steps == [0, 1, 2]
    assert workers.losses == in_process.losses  # exact float equality
    assert_same_tensors(final_trainables(tmp_path / "b"), final_trainables(tmp_path / "a"))
    assert not multiprocessing.active_children()  # the workers ended with the run


def test_resume_with_workers_continues_the_in_process_run_bit_for_bit(tiny_model_dir: Path, prepared_dir: Path,
                                                                      tmp_path: Path, prefetched_steps: list[int]):
    paths = {"model_path": tiny_model_dir, "data_dir": prepared_dir}
    whole = train(load_train_config("base", {**TINY, "loop.max_steps": 4}), out_dir=tmp_path / "whole", **paths)
    train(load_train_config("base", {**TINY, "loop.max_steps": 2}), out_dir=tmp_path / "split", **paths)
    # data_workers may change on resume: it cannot change what is trained.
    resumed = train(load_train_config("base", {**TINY, "loop.max_steps": 4, "loop.data_workers": 2}),
                    out_dir=tmp_path / "split", resume=True, **paths)
    assert prefetched_steps == [2, 3]  # the workers start from the resumed step and data position
    assert resumed.final_step == 4 and resumed.losses == whole.losses[2:]
    assert_same_tensors(final_trainables(tmp_path / "split"), final_trainables(tmp_path / "whole"))


def test_an_interrupted_run_shuts_its_workers_down_before_the_error_leaves_train(
        tiny_model_dir: Path, prepared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Left to interpreter exit, multiprocessing kills the workers before the DataLoader's own shutdown, and on a GPU the
    # pin-memory thread then prints a traceback: train() must close them itself on the way out.
    closed: list[int] = []

    class Recording(BatchPrefetcher):
        def close(self):
            closed.append(self.next_step)
            super().close()

    monkeypatch.setattr(trainer_module, "BatchPrefetcher", Recording)

    def interrupt(info):
        if info.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(load_train_config("base", {**TINY, "loop.max_steps": 5, "loop.data_workers": 2}), on_step=interrupt,
              model_path=tiny_model_dir, data_dir=prepared_dir, out_dir=tmp_path / "run")
    assert closed == [2]  # closed once, right after the step the interrupt came in
    assert not multiprocessing.active_children()


def test_negative_data_workers_is_a_config_error():
    with pytest.raises(ConfigError, match="loop.data_workers"):
        load_train_config("base", {"loop.data_workers": -1}).validate()

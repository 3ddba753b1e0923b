"""`--gpus N`: one video split across the GPUs of this host, or a prompts file shared out over them.

- `helios generate "..." --gpus N`: sequence (context) parallel. Every rank loads the model on its own GPU, turns on
  diffusers' Ulysses context parallelism (`helios_core.distributed.context_parallel`) and runs the same streaming
  loop with the same seed; only rank 0 writes the file and prints.
- `helios generate --prompts FILE --gpus N`: data parallel. One model copy per GPU; rank 0 fixes the pending items
  once (resume filtering as in the one-GPU batch) and broadcasts them; pending item i goes to rank i % N; ranks
  print their own item lines prefixed `[gpu r]`; rank 0 prints the one summary; every rank exits 1 if any item
  failed anywhere.

Launch: without torchrun, the command starts its N workers itself (`launch_workers`) and returns their exit code;
under `torchrun --nproc_per_node N -m helios_cli generate ...` each process is already a rank and runs its part
directly (`--gpus` may then be omitted or must equal the number of processes).
User errors are found in the launching process, before any worker starts (exit 2, one line).

torch is imported lazily, inside functions: this module is imported by `helios --help`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from helios_cli.console import Output
from helios_cli.execute import (
    BatchSummary,
    Job,
    check_job,
    describe_job,
    load_engine,
    report_interrupted,
    run_job,
    run_jobs,
)
from helios_cli.options import CommonOptions, Offload
from helios_core.errors import ConfigError, UserInputError
from helios_core.runner import RunInterrupted

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
BATCH_WAIT_HOURS = 24 * 7  # a batch rank that finishes early waits this long for the slowest rank's last item


@dataclass(frozen=True)
class VideoSpec:
    """What a worker needs to rebuild the same one-video job (plain data: it crosses a process boundary)."""

    prompt: str | None
    common: CommonOptions  # seed already fixed
    image_path: Path | None = None
    video_path: Path | None = None
    from_sidecar: Path | None = None


@dataclass(frozen=True)
class BatchSpec:
    prompts: Path
    common: CommonOptions


def multi_gpu_wanted(common: CommonOptions) -> bool:
    return common.gpus > 1 or _under_torchrun()


def world_size_for(common: CommonOptions) -> int:
    """The number of ranks: --gpus, or torchrun's process count (which --gpus, if given, must match)."""
    if _under_torchrun():
        launched = int(os.environ["WORLD_SIZE"])
        if common.gpus not in (1, launched):
            raise ConfigError(f"--gpus {common.gpus} but torchrun started {launched} processes; drop --gpus or "
                              f"make them equal")
        return launched
    return common.gpus


def check_gpu_options(common: CommonOptions) -> bool:
    """Refuse what --gpus cannot do; return whether the ranks use CUDA (else CPU processes over gloo)."""
    if common.offload not in (None, Offload.none):
        raise ConfigError("--offload group streams weights to ONE GPU; with --gpus each GPU holds the model, "
                          "so drop --offload (or use --gpus 1)")
    if common.device == "cpu":
        return False  # N CPU processes: slow, but it is how the tests run the real multi-process code
    if common.device not in (None, "auto", "cuda"):
        raise ConfigError(f"--gpus uses cuda:0 .. cuda:N-1 itself; drop --device {common.device}")
    import torch

    available = torch.cuda.device_count()
    wanted = world_size_for(common)
    if available < wanted:
        raise ConfigError(f"--gpus {wanted} asked for, but this machine has {available} CUDA GPU(s)")
    return True


# -- one video, sequence parallel ------------------------------------------------------------------------------------
def run_video_on_gpus(spec: VideoSpec, job: Job, model_path: Path | None, out: Output) -> int:
    check_gpu_options(spec.common)
    if _under_torchrun():
        return video_worker(spec)
    request = check_job(job, model_path)  # user errors now, as one line, before N processes start
    split_plan(model_path, request, spec.common.gpus, cuda=spec.common.device != "cpu")
    return _launch(video_worker, spec, spec.common.gpus, out)


def split_plan(model_path: Path | None, request: Any, world_size: int, *, cuda: bool) -> tuple[tuple[int, ...], bool]:
    """(token counts per transformer call, whether they need Ulysses-Anything), from the model folder's configs
    alone (no weights). Raises ConfigError for what cannot be split."""
    from helios_core.distributed.context_parallel import needs_uneven_split, sequence_lengths
    from helios_core.engine import HeliosEngine

    info = HeliosEngine.check_request(model_path, request)
    transformer = info.transformer_config
    if transformer.get("is_amplify_history", False):
        raise ConfigError("--gpus > 1 cannot split this model: it amplifies history keys (is_amplify_history), "
                          "which diffusers' context parallelism computes per shard; use --gpus 1")
    spatial = int(info.vae_config.get("scale_factor_spatial", 8))
    video = request.config.video
    lengths = sequence_lengths(request.config, video.height // spatial, video.width // spatial,
                               tuple(transformer.get("patch_size", (1, 2, 2))))
    uneven = needs_uneven_split(int(transformer.get("num_attention_heads", 40)), lengths, world_size)
    if uneven and not cuda:
        # gloo cannot all-gather shards of different sizes, which Ulysses-Anything needs.
        raise ConfigError(f"on CPUs (gloo) --gpus {world_size} needs every token count {sorted(set(lengths))} and "
                          f"the head count to divide by {world_size}; pick another --height/--width")
    return lengths, uneven


def video_worker(spec: VideoSpec) -> int:
    """One rank of a sequence-parallel video (started by `launch_workers` or torchrun)."""
    from helios_cli.generate import build_single_job
    from helios_cli.resolve import load_from_record
    from helios_core.distributed.context_parallel import enable_context_parallel
    from helios_core.distributed.world import broadcast_from_main, gather_to_all, join_world, leave_world

    cuda = check_gpu_options(spec.common)
    world = join_world(cuda=cuda)
    try:
        out = _rank_output(spec.common, world.rank, main_only=True)
        # Under torchrun each rank chose its own random seed; rank 0's wins so that all make the same video.
        common = replace(spec.common, seed=broadcast_from_main(spec.common.seed), device=str(world.device), gpus=1)
        record = load_from_record(spec.from_sidecar) if spec.from_sidecar is not None else None
        job, model_path = build_single_job(spec.prompt, common, image_path=spec.image_path,
                                           video_path=spec.video_path, record=record)
        request = _checked(job, model_path, world.rank)
        # Also a barrier: every rank has checked the output path before rank 0 creates the file.
        if not all(gather_to_all(request is not None)):
            return EXIT_USER_ERROR
        lengths, uneven = split_plan(model_path, request, world.world_size, cuda=cuda)
        describe_job(job, request, out)
        engine = load_engine(model_path, request, out)
        enable_context_parallel(engine.generator.transformer, world.world_size, uneven=uneven)
        out.info(f"sequence parallel over {world.world_size} ranks (Ulysses{'-Anything' if uneven else ''}, "
                 f"up to {max(lengths)} tokens per call)", style="dim")
        if not world.is_main:
            for _ in engine.generate(request):  # the same loop, in lockstep; rank 0 keeps the frames
                pass
            return 0
        try:
            run_job(engine, job, request, out)
        except RunInterrupted as stop:
            report_interrupted(stop.result, out)
            return EXIT_INTERRUPTED
        return 0
    finally:
        leave_world()


# -- a prompts file, data parallel -----------------------------------------------------------------------------------
def run_prompts_on_gpus(path: Path, common: CommonOptions, out: Output) -> int:
    check_gpu_options(common)
    spec = BatchSpec(path, common)
    if _under_torchrun():
        return batch_worker(spec)
    return _launch(batch_worker, spec, common.gpus, out)


def batch_worker(spec: BatchSpec) -> int:
    """One rank of a data-parallel batch: its share of the pending items, then the shared summary."""
    from datetime import timedelta

    from helios_cli.batch_cli import batch_output_dir, item_job
    from helios_cli.resolve import resolve_config
    from helios_core.batch import load_prompts_file, split_done
    from helios_core.distributed.sharding import items_for_rank
    from helios_core.distributed.world import broadcast_from_main, gather_to_all, join_world, leave_world

    cuda = check_gpu_options(spec.common)
    # gloo even on GPUs: ranks only exchange the pending list and summaries, never tensors.
    world = join_world(cuda=cuda, backend="gloo", timeout=timedelta(hours=BATCH_WAIT_HOURS))
    try:
        common = replace(spec.common, device=str(world.device), gpus=1)
        out = _rank_output(common, world.rank, main_only=False, prefix=f"[gpu {world.rank}] ")
        items = load_prompts_file(spec.prompts)
        output_dir = batch_output_dir(common)
        base_config = resolve_config(common.config_flags())
        # Rank 0 decides once what is pending; deciding per rank would race with the files other ranks finish.
        pending, done = (items, []) if common.overwrite else split_done(items, output_dir)
        pending_indices, done_names = broadcast_from_main(
            ([item.index for item in pending], [str(output_dir / item.output_name) for item in done]))
        by_index = {item.index: item for item in items}
        mine = [by_index[index] for index in items_for_rank(pending_indices, world.rank, world.world_size)]
        jobs = [item_job(item, base_config, common, output_dir, spec.prompts) for item in mine]
        summary = BatchSummary(skipped=list(done_names) if world.is_main else [])
        interrupted = False
        try:
            run_jobs(jobs, common.model, summary, out)
        except RunInterrupted as stop:
            report_interrupted(stop.result, out)
            interrupted = True
        summaries = gather_to_all((summary, interrupted))
        merged = _merge([s for s, _ in summaries])
        if world.is_main:
            _print_summary(merged, world.world_size, out)
        if any(flag for _, flag in summaries):
            return EXIT_INTERRUPTED
        return 1 if merged.failed else 0
    finally:
        leave_world()


def _merge(summaries: list[BatchSummary]) -> BatchSummary:
    merged = BatchSummary()
    for summary in summaries:
        merged.completed.extend(summary.completed)
        merged.skipped.extend(summary.skipped)
        merged.failed.extend(summary.failed)
    return merged


def _print_summary(summary: BatchSummary, world_size: int, out: Output) -> None:
    for name in summary.skipped:
        out.result({"status": "skipped", "output": name})
    out.info(
        f"batch on {world_size} GPUs: {len(summary.completed)} done, {len(summary.skipped)} skipped (already "
        f"there), {len(summary.failed)} failed",
        style="bold red" if summary.failed else "bold green",
    )


# -- shared ----------------------------------------------------------------------------------------------------------
def _launch(target: Any, spec: Any, world_size: int, out: Output) -> int:
    from helios_core.distributed.launch import launch_workers

    out.info(f"starting {world_size} workers ...", style="dim")
    try:
        codes = launch_workers(target, spec, world_size)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if all(code == codes[0] for code in codes):
        return codes[0]
    failed = {rank: code for rank, code in enumerate(codes) if code != 0}
    out.failure(f"workers ended with different exit codes {failed} (details above)")
    return max(failed.values())


def _checked(job: Job, model_path: Path | None, rank: int) -> Any:
    """The request, or None after printing the user error (rank 0 only) so that every rank can stop together."""
    try:
        return check_job(job, model_path)
    except UserInputError as err:
        if rank == 0:
            Output(quiet=True).failure(str(err))
        return None


class _RankOutput(Output):
    """A rank's console: silent on ranks other than 0 (`main_only`), else every line prefixed with the rank."""

    prefix: str = ""
    silent: bool = False

    def info(self, message: str, style: str | None = None) -> None:
        if not self.silent:
            super().info(self.prefix + message, style)

    def warning(self, message: str) -> None:
        if not self.silent:
            super().warning(self.prefix + message)

    def failure(self, message: str) -> None:
        if not self.silent:
            super().failure(self.prefix + message)

    def result(self, data: dict[str, Any]) -> None:
        if not self.silent:
            super().result(data)


def _rank_output(common: CommonOptions, rank: int, *, main_only: bool, prefix: str = "") -> Output:
    # Batch ranks print plain lines: N live progress bars on one terminal would overwrite each other.
    out = _RankOutput(json_mode=common.json, quiet=common.quiet or not main_only)
    out.prefix = prefix
    out.silent = main_only and rank != 0
    return out


def _under_torchrun() -> bool:
    """The rule of `helios_core.distributed.world.launched_by_torchrun`, read here without importing torch."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1

"""The training loop shared by the three stages: data, history augmentation, loss, AdamW, checkpoints, logging.

    for step in range(start, max_steps):
        lr <- warm-up then constant      batch <- SampleOrder(position)      history <- drop + Frame-Aware Corrupt
        loss <- stage.loss   backward   clip   AdamW   EMA      log.jsonl      checkpoint every N steps

DMD (`distill.method: dmd`) adds critic updates before each generator update, each on the next batch of the
sample order, and its critic adapter + optimizer as extra checkpoint files (`stages/dmd.py`). With
`loop.validate_every`, the main process writes a validation video every N steps (`validation.py`, logged).

Randomness: the sample order is a pure function of (seed, position). Every per-sample draw of a step (history
layout and corruption, caption dropout, sigma, noise) comes from that sample's own CPU generator, seeded from
(seed, step, the sample's index in the global batch), and the mid stage's pyramid level from a generator seeded from
(seed, step), the same on every rank (`step_random.py`). So the draws do not depend on how the global batch is
split: N processes at batch B train like one process at batch N x B (tested with 2 gloo processes). The distilled
stages' own draws (teacher sampling, DMD rollouts and critic noise) still come from one generator per rank
(seed x 1009 + rank); DMD runs in one process only.

Exact resume: the step, the data position, that per-rank generator, the weights, AdamW and EMA are all in the
checkpoint, and the per-sample draws need only the step. So on a CPU, `resume=True` after a kill continues the
identical loss curve bit for bit (tested). `log.jsonl` lines after the resumed step are dropped first, so the log
reads as one uninterrupted run.

Devices: `accelerate.Accelerator` places the model, wraps it for DDP under `accelerate launch`, and runs bf16
autocast on GPUs (fp32 on CPU). Rank r takes the r-th batch_size slice of each global batch of the common sample
order, so the global batch is batch_size x world_size.

Data workers: with `loop.data_workers = N > 0`, the base and mid stages read and augment the coming steps' batches in N
DataLoader worker processes (`prefetch.py`), with the same function and per-sample generators as the main process;
each batch arrives (pinned on GPUs) with its generators' states after augmentation, so the loss draws what it would
draw in process and the run is bit-identical to N = 0 (tested). The distilled stages build their batches in process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from helios_core.errors import ConfigError, OutputPathError
from helios_core.training.checkpoint import (
    RunState,
    checkpoint_dirs,
    latest_checkpoint,
    load_checkpoint,
    load_extra_state,
    read_checkpoint_config,
    restore_rng,
    rng_states,
    save_checkpoint,
)
from helios_core.training.config import RESUME_MAY_CHANGE, TrainConfig, changed_keys
from helios_core.training.caption_probe import PROBED_STAGES, caption_gap
from helios_core.training.dataset import LatentChunkDataset, SampleOrder, TrainingBatch
from helios_core.training.model_setup import (
    Ema,
    LoadedModel,
    frozen_copy_if_needed,
    load_transformer,
    trainable_parameters,
)
from helios_core.training.prefetch import BatchPrefetcher, BatchRecipe, StepBatches
from helios_core.training.stages.base import BaseStage
from helios_core.training.stages.common import HistoryLayout
from helios_core.training.stages.distilled import DistilledStage
from helios_core.training.stages.dmd import DmdStage
from helios_core.training.stages.mid import MidStage
from helios_core.training.stages.pyramid_ode import PyramidOdeStage
from helios_core.training.step_random import BatchRandom
from helios_core.training.validation import Validator

LOG_FILE = "log.jsonl"
PROBE_SEED = 1234  # fixed batches and draws for the caption probe, the same at every validation


@dataclass(frozen=True)
class StepInfo:
    step: int  # steps done so far (1-based after the first update)
    max_steps: int
    loss: float
    learning_rate: float
    grad_norm: float
    seconds: float  # wall time of this step


@dataclass
class TrainResult:
    out_dir: Path
    steps_done: int  # by this call
    final_step: int
    losses: list[float]  # of the steps done by this call
    last_checkpoint: Path | None


def learning_rate_at(config: TrainConfig, step: int) -> float:
    """Linear warm-up over `warmup_steps`, then constant (the reference's schedules)."""
    warmup = config.optim.warmup_steps
    return config.optim.lr * min(1.0, (step + 1) / warmup) if warmup else config.optim.lr


def _resolve_precision(config: TrainConfig) -> str:
    precision = config.loop.precision
    if precision == "auto":
        return "bf16" if torch.cuda.is_available() else "fp32"
    if precision == "bf16" and not torch.cuda.is_available():
        raise ConfigError("loop.precision=bf16 needs a CUDA GPU; use fp32 (or auto) on a CPU")
    return precision


def _check_out_dir(out_dir: Path, resume: bool) -> Path | None:
    checkpoint = latest_checkpoint(out_dir)
    if resume:
        return checkpoint  # None: nothing to resume yet, start from step 0
    if checkpoint is not None or (out_dir / LOG_FILE).is_file():
        raise OutputPathError(f"{out_dir} already holds a training run; pass --resume to continue it or choose a "
                              "new --out folder")
    return None


def _truncate_log(out_dir: Path, step: int) -> None:
    path = out_dir / LOG_FILE
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _build_stage(config: TrainConfig, layout: HistoryLayout, dataset: LatentChunkDataset, scheduler_config: dict,
                 transformer: torch.nn.Module, device: torch.device):
    if config.stage == "base":
        return BaseStage(config, layout)
    if config.stage == "mid":
        return MidStage(config, layout)
    if config.distill.method == "dmd":
        return DmdStage(config, layout, scheduler_config, tuple(transformer.config.patch_size),
                        dataset.negative_text().to(device), transformer)
    teacher = frozen_copy_if_needed(transformer, config)
    stage_class = PyramidOdeStage if config.distill.method == "pyramid_ode" else DistilledStage
    return stage_class(config, layout, scheduler_config, tuple(transformer.config.patch_size),
                       dataset.negative_text().to(device), teacher)


@dataclass
class Components:
    transformer: torch.nn.Module
    dataset: LatentChunkDataset
    layout: HistoryLayout
    stage: BaseStage | MidStage | DistilledStage | DmdStage
    model: LoadedModel  # the scheduler config, and the VAE and tokenizer when validation videos are on


def build_components(config: TrainConfig, model_path: Path, data_dir: Path, device: torch.device,
                     precision: str) -> Components:
    """The model (with its adapter), the data and the stage's loss, as training and evaluation both need them."""
    layout = HistoryLayout(config.history)
    dataset = LatentChunkDataset(data_dir, history_frames=layout.history_frames)
    prepared_chunk = int(dataset.settings.get("chunk_latent_frames", config.history.latent_frames_per_chunk))
    if prepared_chunk != config.history.latent_frames_per_chunk:
        raise ConfigError(f"{data_dir} was prepared with {prepared_chunk}-latent chunks but history."
                          f"latent_frames_per_chunk is {config.history.latent_frames_per_chunk}")
    base_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    loaded = load_transformer(model_path, config, device, base_dtype, keep_vae=config.loop.validate_every > 0)
    stage = _build_stage(config, layout, dataset, loaded.scheduler_config, loaded.transformer, device)
    return Components(loaded.transformer, dataset, layout, stage, loaded)


def train(config: TrainConfig, *, model_path: Path, data_dir: Path, out_dir: Path, resume: bool = False,
          on_step: Callable[[StepInfo], None] | None = None) -> TrainResult:
    config = config.validate()
    out_dir = Path(out_dir)
    checkpoint = _check_out_dir(out_dir, resume)
    if checkpoint is not None:
        changed = [k for k in changed_keys(read_checkpoint_config(checkpoint), config) if k not in RESUME_MAY_CHANGE]
        if changed:
            raise ConfigError(f"--resume with settings that differ from the run's ({', '.join(changed)}); only "
                              f"{', '.join(sorted(RESUME_MAY_CHANGE))} may change")
    precision = _resolve_precision(config)
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="bf16" if precision == "bf16" else "no")
    device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
    if device.type == "cpu":
        device = torch.device("cpu")  # multi-process CPU runs get "cpu:0", which safetensors refuses to load onto
    if world > 1 and config.stage == "distilled" and config.distill.method == "dmd":
        raise ConfigError("distill.method=dmd runs in one process for now (its two adapters share one DDP-wrapped "
                          "model); launch it without accelerate multi-GPU")

    parts = build_components(config, Path(model_path), Path(data_dir), device, precision)
    transformer, dataset, stage = parts.transformer, parts.dataset, parts.stage
    trainables = trainable_parameters(transformer)
    optimizer = torch.optim.AdamW(list(trainables.values()), lr=config.optim.lr, betas=config.optim.betas,
                                  weight_decay=config.optim.weight_decay, eps=config.optim.eps)
    ema = Ema(trainables, config.ema.decay, config.ema.start_step) if config.ema.enabled else None
    # Only the distilled stages draw from this per-rank stream; everything per sample uses StepRandom.
    generator = torch.Generator("cpu").manual_seed(config.loop.seed * 1009 + rank)
    order = SampleOrder(len(dataset), config.loop.seed)

    step, position = 0, 0
    if checkpoint is not None:
        run, rng = load_checkpoint(checkpoint, trainables, optimizer, ema.shadow if ema else None, rank)
        if run.world_size != world:
            raise ConfigError(f"checkpoint {checkpoint} was written by {run.world_size} process(es); resume with "
                              f"the same number ({world} now)")
        restore_rng(rng, generator)
        if isinstance(stage, DmdStage):
            stage.load_extra_state(load_extra_state(checkpoint, stage.extra_state_names))
        step, position = run.step, run.data_position
        if accelerator.is_main_process:
            _truncate_log(out_dir, step)
    out_dir.mkdir(parents=True, exist_ok=True)
    validator = None
    if config.loop.validate_every and accelerator.is_main_process:
        validator = Validator(config, parts.model, Path(model_path), dataset.settings, out_dir, device, precision)
    model, optimizer = accelerator.prepare(transformer, optimizer)
    if isinstance(stage, (DistilledStage, PyramidOdeStage)):
        stage.raw_model = transformer

    losses: list[float] = []
    start_step, last = step, checkpoint
    batch_size = config.loop.batch_size

    negative_text = dataset.negative_text() if config.drop.caption_prob > 0 else None
    recipe = BatchRecipe(dataset, order, config, negative_text)
    # With validation on, base and mid runs also log whether the model reads its captions (caption_probe.py) on two
    # fixed batches of their own data: a low loss alone did not show that the first embedded model ignored them.
    probe_batches = None
    if validator is not None and config.stage in PROBED_STAGES and batch_size >= 2 and len(dataset) >= 2:
        probe_order = SampleOrder(len(dataset), PROBE_SEED)
        probe_batches = [probe_order.batch(dataset, i * batch_size, batch_size) for i in range(2)]

    # With loop.data_workers, worker processes build the coming steps' batches with the same recipe (prefetch.py).
    # Only base and mid take exactly one batch per step, as the workers' step -> data position mapping assumes; the
    # distilled stages keep the in-process path (DMD draws several batches per step: its critic updates' and the
    # generator's).
    prefetcher = None
    if config.loop.data_workers > 0 and config.stage in ("base", "mid") and step < config.loop.max_steps:
        coming = StepBatches(recipe, step, config.loop.max_steps - step, position, rank, world)
        prefetcher = BatchPrefetcher(coming, config.loop.data_workers, device)

    def next_batch() -> tuple[TrainingBatch, BatchRandom]:
        """This rank's slice of the next global batch, augmented, and its samples' generators (the stage loss goes
        on drawing from them). A sample's index counts the global batches drawn so far in this step (DMD draws
        several), so it does not depend on the rank layout."""
        nonlocal position
        if prefetcher is not None:
            batch, random = prefetcher.next()
        else:
            first = position - step_position + rank * batch_size
            batch, random = recipe.build(step, first, position + rank * batch_size)
            batch = batch.to(device)
        position += batch_size * world
        return batch, random

    # The workers are shut down here, in order, even when the run is interrupted (Ctrl-C, `timeout -s INT`): left to
    # interpreter exit, multiprocessing killed them first and the pin-memory thread, still waiting on one, printed a
    # FileNotFoundError traceback into every time-limited GPU run's log.
    try:
        while step < config.loop.max_steps:
            started = time.perf_counter()
            step_position = position
            lr = learning_rate_at(config, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            if isinstance(stage, DmdStage):
                stage.train_critic(model, lambda: next_batch()[0], generator, step)
            batch, random = next_batch()
            distilled = isinstance(stage, (DistilledStage, PyramidOdeStage, DmdStage))
            loss = stage.loss(model, batch, generator if distilled else random)
            step_metrics = dict(getattr(stage, "last_metrics", {}))  # before a caption probe reruns the loss
            accelerator.backward(loss)
            grad_norm = accelerator.clip_grad_norm_(list(trainables.values()), config.optim.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if ema is not None:
                ema.update(trainables, step)
            reported = accelerator.reduce(loss.detach(), reduction="mean") if world > 1 else loss.detach()
            loss_value = float(reported)
            losses.append(loss_value)
            info = StepInfo(step, config.loop.max_steps, loss_value, lr, float(grad_norm),
                            time.perf_counter() - started)
            videos: list[str] = []
            probe: dict[str, float] = {}
            if config.loop.validate_every and step % config.loop.validate_every == 0:
                if validator is not None:
                    videos = validator.run(step, trainables, ema.shadow if ema else None)
                if probe_batches is not None:
                    probe = caption_gap(stage, model, probe_batches, PROBE_SEED, device)
                accelerator.wait_for_everyone()
            if accelerator.is_main_process and (step % config.loop.log_every == 0 or step == config.loop.max_steps
                                                or videos or probe):
                with (out_dir / LOG_FILE).open("a", encoding="utf-8") as log:
                    entry = {"step": step, "loss": loss_value, "lr": lr, "grad_norm": info.grad_norm,
                             "seconds": info.seconds, **step_metrics}
                    if videos:
                        entry["validation_videos"] = videos
                    if probe:
                        entry.update(probe)
                    log.write(json.dumps(entry) + "\n")
            if step % config.loop.checkpoint_every == 0 or step == config.loop.max_steps:
                states = rng_states(generator)
                rng_by_rank = gather_object([states]) if world > 1 else [states]
                if accelerator.is_main_process:
                    run = RunState(step=step, data_position=position, learning_rate=lr, world_size=world)
                    extra = stage.extra_state() if isinstance(stage, DmdStage) else None
                    last = save_checkpoint(out_dir, run, config, trainables, optimizer, ema.shadow if ema else None,
                                           rng_by_rank, config.loop.keep_last, extra)
                accelerator.wait_for_everyone()
            if on_step is not None:
                on_step(info)
    finally:
        if prefetcher is not None:
            prefetcher.close()
    final = checkpoint_dirs(out_dir)
    return TrainResult(out_dir, step - start_step, step, losses, final[-1] if final else last)

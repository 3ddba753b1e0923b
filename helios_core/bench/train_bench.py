"""`helios bench train`: seconds per training step, peak GPU memory and FLOP utilisation of a stage, random weights.

What runs is the training step of `helios train` on synthetic data: the stage's own loss (`stages/base.py` or
`stages/mid.py`, the mid stage training a random pyramid level per step as in training), the history augmentation
(drop + Frame-Aware Corrupt, on the CPU), LoRA added as training adds it (rank r, alpha r, the preset's target
modules), gradient checkpointing, bf16 autocast on a GPU, gradient clipping and AdamW on the adapter. The data are
random latents of the training shapes: target (B, 16, 9, H/8, W/8), 19 history latents, the anchor and a 512-token
prompt embedding. No data folder, VAE or text encoder is involved. `size="full"` is the 14B Helios transformer built
directly on the GPU in bf16 with random weights (the fp32-kept modules back in fp32, as a loaded checkpoint has them);
random weights do the same arithmetic as trained ones. `size="tiny"` is the test model (64x64 by default).

Timing: `warmup` untimed steps (more for mid, until each pyramid level has run once), then `steps` steps, each
ended by a device synchronisation (mid: the timed steps go round the levels); seconds per step is their mean, and
`expected_seconds_per_step` weights each level by the stage's sampling ratio. Peak memory is `torch.cuda.max_memory_allocated` over the timed steps (weights, optimizer state included).
FLOPs are counted per step from the transformer forward's real input shapes (`train_flops.py` says how); achieved
TFLOP/s = model FLOPs of the timed steps / their time, MFU = that / the H100 SXM dense bf16 peak, 989 TFLOP/s.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Literal

import torch
from diffusers import HeliosTransformer3DModel

from helios_core.bench.speed_flops import H100_DENSE_BF16_TFLOPS, forward_flops, forward_tokens
from helios_core.bench.speed_models import keep_modules_in_fp32
from helios_core.bench.train_flops import adapted_layers, lora_forward_flops, training_step_flops
from helios_core.devices import resolve_device
from helios_core.errors import ConfigError
from helios_core.model.tiny import full_transformer_config, tiny_transformer_config
from helios_core.training.config import TrainConfig, load_train_config
from helios_core.training.dataset import TrainingBatch
from helios_core.training.history_aug import augment_history
from helios_core.training.model_setup import add_lora, trainable_parameters
from helios_core.training.stages.base import BaseStage
from helios_core.training.stages.common import HistoryLayout
from helios_core.training.stages.mid import MidStage

BENCH_STAGES = ("base", "mid")
MAX_EXTRA_WARMUP = 8
TEXT_TOKENS = 512
FLOP_METHOD = ("speed_flops.forward_flops per forward (linear + attention matmuls, 2 FLOPs per multiply-add) from "
               "the real input shapes; model FLOPs per step: LoRA = 2x base linears + 3x attention + 3x adapters, "
               "full fine-tuning = 3x forward; gradient-checkpoint recomputation counted only in hardware FLOPs")


def build_transformer(size: Literal["full", "tiny"], device: torch.device, seed: int) -> HeliosTransformer3DModel:
    """Random weights, built where they will run (the 14B model never exists in fp32 or in CPU memory)."""
    config = full_transformer_config() if size == "full" else tiny_transformer_config()
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        if size == "tiny":
            return HeliosTransformer3DModel(**config).to(device)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device(device):
                transformer = HeliosTransformer3DModel(**config)
        finally:
            torch.set_default_dtype(previous)
    keep_modules_in_fp32(transformer)
    return transformer


def synthetic_batch(config: TrainConfig, layout: HistoryLayout, text_dim: int, height: int, width: int,
                    batch_size: int, generator: torch.Generator, text_tokens: int = TEXT_TOKENS) -> TrainingBatch:
    """Random CPU latents of the training shapes (the dataset's batches are CPU float32 too); `text_tokens` is the
    prompt embedding's length (512 for the released models, 64 for the embedded one)."""
    h, w = height // 8, width // 8
    chunk = config.history.latent_frames_per_chunk

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=generator)

    return TrainingBatch(randn(batch_size, 16, chunk, h, w), randn(batch_size, 16, layout.history_frames, h, w),
                         randn(batch_size, 16, 1, h, w), randn(batch_size, text_tokens, text_dim))


def _check(stage: str, size: str, device: torch.device, height: int, width: int, steps: int, warmup: int,
           lora_rank: int) -> None:
    if stage not in BENCH_STAGES:
        raise ConfigError(f"helios bench train measures the {' and '.join(BENCH_STAGES)} stages, not '{stage}'")
    if size not in ("full", "tiny"):
        raise ConfigError(f"--size must be full or tiny, got '{size}'")
    if size == "full" and device.type != "cuda":
        raise ConfigError("--size full builds the 14B model on a GPU; this needs a CUDA device (or use --size tiny)")
    if height % 64 or width % 64 or height <= 0 or width <= 0:
        raise ConfigError(f"--height and --width must be positive multiples of 64 (three pyramid levels of 2x2 "
                          f"patches on 8x latents), got {height}x{width}")
    if steps < 1 or warmup < 0 or lora_rank < 1:
        raise ConfigError("--steps and --lora-rank must be >= 1 and --warmup >= 0")


def run_train_bench(*, size: Literal["full", "tiny"] = "full", stage: str = "mid", steps: int = 6, warmup: int = 2,
                    lora_rank: int = 256, height: int | None = None, width: int | None = None, batch_size: int = 1,
                    gradient_checkpointing: bool = True, device: str = "auto", seed: int = 0) -> dict:
    device_ = resolve_device(device)
    height = height or (384 if size == "full" else 64)
    width = width or (640 if size == "full" else 64)
    _check(stage, size, device_, height, width, steps, warmup, lora_rank)
    config = load_train_config(stage, {"lora.rank": lora_rank, "lora.alpha": float(lora_rank), "loop.seed": seed,
                                       "loop.batch_size": batch_size,
                                       "loop.gradient_checkpointing": gradient_checkpointing})
    cuda = device_.type == "cuda"
    started = time.perf_counter()
    transformer = build_transformer(size, device_, seed).requires_grad_(False)
    with torch.device(device_):  # the adapters (1.2 B fp32 parameters at rank 256) are made on the device too
        add_lora(transformer, config.lora, seed)
    if gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    if cuda:
        torch.cuda.synchronize(device_)
    build_seconds = time.perf_counter() - started

    layout = HistoryLayout(config.history)
    loss_of = (MidStage if stage == "mid" else BaseStage)(config, layout)
    trainables = trainable_parameters(transformer)
    optimizer = torch.optim.AdamW(list(trainables.values()), lr=config.optim.lr, betas=config.optim.betas,
                                  weight_decay=config.optim.weight_decay, eps=config.optim.eps)
    model_config = dict(transformer.config)
    layers = adapted_layers(transformer)
    shapes: list[dict] = []

    def record_shapes(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        shapes.append({k: tuple(v.shape) for k, v in kwargs.items() if torch.is_tensor(v)})

    hook = transformer.register_forward_pre_hook(record_shapes, with_kwargs=True)
    generator = torch.Generator("cpu").manual_seed(seed)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)

    def train_step() -> tuple[float, float]:
        shapes.clear()
        step_started = time.perf_counter()
        batch = synthetic_batch(config, layout, int(model_config["text_dim"]), height, width, batch_size, generator)
        batch.history, batch.anchor = augment_history(batch.history, batch.anchor, config.drop, config.corrupt,
                                                      config.history.latent_frames_per_chunk, generator)
        with autocast:
            loss = loss_of.loss(transformer, batch.to(device_), generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(trainables.values()), config.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device_)
        return time.perf_counter() - step_started, float(loss.detach())

    # Warm-up also runs until every pyramid level has been seen once (mid draws a level per step), so no timed
    # step pays a first-time cost of its shapes (kernel choice, allocator growth); bounded by MAX_EXTRA_WARMUP.
    levels = config.pyramid.num_stages if stage == "mid" else 1
    seen: set[tuple] = set()
    warmed = 0
    while warmed < warmup or (warmup and len(seen) < levels and warmed < warmup + MAX_EXTRA_WARMUP):
        train_step()
        seen.add(shapes[0]["hidden_states"])
        warmed += 1
    if cuda:
        torch.cuda.reset_peak_memory_stats(device_)
    # Timed mid steps go round the pyramid levels (step i trains level i mod levels) instead of drawing them: six
    # random draws can miss the full-resolution level, the dearest one (the first H100 run timed none of it).
    # `expected_seconds_per_step` then weights each level's time by the stage's sample_ratios, as training draws.
    if stage == "mid":
        rounds = iter(range(steps))
        loss_of.pick_stage = lambda generator: next(rounds) % levels
    records = []
    for _ in range(steps):
        seconds, loss = train_step()
        records.append(_step_record(seconds, loss, shapes, model_config, layers, batch_size, gradient_checkpointing))
    hook.remove()
    ratios = config.pyramid.sample_ratios if stage == "mid" else None
    return _summary(records, size=size, stage=stage, device=device_, lora_rank=lora_rank, height=height, width=width,
                    batch_size=batch_size, gradient_checkpointing=gradient_checkpointing, warmup=warmed,
                    build_seconds=build_seconds, transformer=transformer, trainables=trainables, ratios=ratios)


def _step_record(seconds: float, loss: float, shapes: list[dict], model_config: dict, layers: list,
                 batch_size: int, gradient_checkpointing: bool) -> dict:
    model_flops = hardware_flops = 0.0
    noisy_tokens = []
    for forward in shapes:  # one per step for base and mid; checkpoint recomputation does not re-enter the top
        tokens = forward_tokens(model_config, forward["hidden_states"], forward.get("latents_history_short"),
                                forward.get("latents_history_mid"), forward.get("latents_history_long"),
                                text_tokens=forward["encoder_hidden_states"][1])
        flops = training_step_flops(forward_flops(model_config, tokens), lora_forward_flops(layers, model_config,
                                                                                            tokens),
                                    lora_training=True, gradient_checkpointing=gradient_checkpointing)
        model_flops += batch_size * flops.model
        hardware_flops += batch_size * flops.hardware
        noisy_tokens.append(tokens.noisy)
    return {"seconds": seconds, "loss": loss, "noisy_tokens": noisy_tokens, "model_tflop": model_flops / 1e12,
            "hardware_tflop": hardware_flops / 1e12}


def _expected_seconds(records: list[dict], ratios: list[float] | None) -> float:
    """Mean seconds per step as training would see it: each pyramid level's mean time weighted by its sampling
    ratio (levels ordered coarsest first, as `MidStage.pick_stage` numbers them); the plain mean for base."""
    by_level = list(_by_tokens(records).values())  # sorted by noisy tokens: coarsest level first
    if ratios is None or len(by_level) != len(ratios):
        return sum(r["seconds"] for r in records) / len(records)
    return sum(w * t for w, t in zip(ratios, by_level, strict=True)) / sum(ratios)


def _summary(records: list[dict], *, device: torch.device, build_seconds: float, transformer: torch.nn.Module,
             trainables: dict, ratios: list[float] | None = None, **settings: object) -> dict:
    total_seconds = sum(r["seconds"] for r in records)
    model_tflops = sum(r["model_tflop"] for r in records) / total_seconds
    hardware_tflops = sum(r["hardware_tflop"] for r in records) / total_seconds
    cuda = device.type == "cuda"
    return {
        "bench": "train", **settings, "steps": len(records),
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "transformer_params": sum(p.numel() for p in transformer.parameters()),
        "trainable_params": sum(p.numel() for p in trainables.values()),
        "build_seconds": round(build_seconds, 3),
        "seconds_per_step": total_seconds / len(records),
        "expected_seconds_per_step": _expected_seconds(records, ratios),  # mid: levels weighted by sample_ratios
        "seconds_per_step_median": statistics.median(r["seconds"] for r in records),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
        "peak_gpu_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30 if cuda else None,
        "tflops_achieved": model_tflops,
        "hardware_tflops": hardware_tflops,
        "mfu": model_tflops / H100_DENSE_BF16_TFLOPS,
        "peak_tflops": H100_DENSE_BF16_TFLOPS,
        "flop_method": FLOP_METHOD,
        "losses_finite": all(math.isfinite(r["loss"]) for r in records),
        "seconds_by_noisy_tokens": _by_tokens(records),  # mid: each pyramid level has its own cost
        "per_step": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in records],
    }


def _by_tokens(records: list[dict]) -> dict[str, float]:
    groups: dict[str, list[float]] = {}
    for record in records:
        groups.setdefault(str(sum(record["noisy_tokens"])), []).append(record["seconds"])
    return {tokens: round(sum(times) / len(times), 4) for tokens, times in sorted(groups.items(), key=lambda kv:
                                                                                   int(kv[0]))}


def format_train_table(result: dict) -> str:
    peak = result["peak_gpu_memory_gib"]
    lines = [f"helios bench train: {result['stage']} stage, {result['size']} model on {result['device']}, LoRA rank "
             f"{result['lora_rank']}, {result['height']}x{result['width']}, batch {result['batch_size']}, gradient "
             f"checkpointing {'on' if result['gradient_checkpointing'] else 'off'}",
             f"  seconds per step  {result['seconds_per_step']:.3f} (median {result['seconds_per_step_median']:.3f},"
             f" {result['steps']} steps after {result['warmup']} warm-up; weighted as training draws the"
             f" levels: {result['expected_seconds_per_step']:.3f})",
             f"  peak GPU memory   {'n/a (CPU)' if peak is None else f'{peak:.2f} GiB'}",
             f"  model TFLOP/s     {result['tflops_achieved']:.2f}  (MFU {100 * result['mfu']:.1f}% of "
             f"{result['peak_tflops']:.0f}; with recomputation {result['hardware_tflops']:.2f} TFLOP/s)"]
    return "\n".join(lines)

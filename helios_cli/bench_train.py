"""`helios bench train`: time training steps of a stage on random weights (helios_core.bench.train_bench).

Human summary first, the last stdout line one JSON object (seconds per step, peak GPU memory, TFLOP/s, MFU).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from helios_core.errors import UserInputError


def add_train_command(bench_app: typer.Typer) -> None:
    @bench_app.command("train")
    def train(
        size: Annotated[str, typer.Option(help="full (the 14B model, random bf16 weights on the GPU) or tiny.")]
        = "full",
        stage: Annotated[str, typer.Option(help="base or mid.")] = "mid",
        steps: Annotated[int, typer.Option(help="Timed training steps.")] = 6,
        warmup: Annotated[int, typer.Option(help="Untimed steps first.")] = 2,
        lora_rank: Annotated[int, typer.Option(help="LoRA rank (alpha = rank).")] = 256,
        height: Annotated[int | None, typer.Option(help="Height in pixels (default 384; tiny: 64).")] = None,
        width: Annotated[int | None, typer.Option(help="Width in pixels (default 640; tiny: 64).")] = None,
        batch_size: Annotated[int, typer.Option(help="Samples per step.")] = 1,
        gradient_checkpointing: Annotated[bool, typer.Option(help="Recompute blocks in backward.")] = True,
        device: Annotated[str, typer.Option(help="auto, cuda, cuda:N or (tiny) cpu.")] = "auto",
        seed: Annotated[int, typer.Option(help="Seed of the weights and data.")] = 0,
    ) -> None:
        """Seconds per training step, peak GPU memory and TFLOP/s / MFU of a stage, on synthetic latents."""
        from helios_core.bench.train_bench import format_train_table, run_train_bench

        if batch_size < 1:
            raise UserInputError(f"--batch-size must be at least 1, got {batch_size}")
        result = run_train_bench(size=size, stage=stage, steps=steps, warmup=warmup, lora_rank=lora_rank,
                                 height=height, width=width, batch_size=batch_size,
                                 gradient_checkpointing=gradient_checkpointing, device=device, seed=seed)
        print(format_train_table(result))
        print(json.dumps(result))

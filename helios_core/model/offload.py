"""`runtime.offload = group`: keep the transformer's weights in CPU memory and stream them to the GPU one block at a
time (diffusers' group offloading, with prefetch on a side stream), for GPUs that cannot hold the 27 GB of bf16
weights. One place for the engine and the speed bench, so both measure the same thing.

It does not combine with torch.compile: diffusers' onload hook is wrapped in `torch.compiler.disable`, which
`fullgraph=True` refuses to trace (measured on an H100: `Unsupported: Skip inlining torch.compiler.disable()`d
function`). `require_offload_choice` says so before any weights load.
"""

from __future__ import annotations

import torch

from helios_core.errors import ConfigError


def require_offload_choice(offload: str, compile: bool, device: torch.device) -> None:
    if offload == "none":
        return
    if device.type != "cuda":
        raise ConfigError("--offload needs a CUDA device (on a CPU everything already lives in CPU memory)")
    if compile:
        raise ConfigError("--offload group and --compile do not combine (diffusers' offload hooks cannot be "
                          "compiled); choose one")


def enable_group_offload(transformer: torch.nn.Module, device: torch.device) -> None:
    """Blocks live in (pinned) CPU memory; each visits `device` for its forward while the next one is prefetched."""
    transformer.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                     offload_type="block_level", num_blocks_per_group=1, use_stream=True)

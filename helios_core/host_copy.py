"""Host-to-GPU copies that do not synchronise the stream.

Noise is drawn on the CPU from the request's generator (so a seed gives the same video on any device). A plain
`.to("cuda")` from pageable memory makes the host wait until the GPU has drained its queue, leaving the GPU idle
while Python prepares the next launches; copying from pinned memory with `non_blocking=True` keeps the queue full.
PyTorch's caching host allocator keeps each pinned buffer alive until its copy has run.
"""

from __future__ import annotations

import torch


def host_to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)

"""`runtime.quantize = none | fp8`: the transformer blocks' linear layers as FP8 matmuls (an opt-in speed path).

    none  bf16 weights and matmuls: the reference, and the default.
    fp8   torchao's `Float8DynamicActivationFloat8WeightConfig` with per-row scales: each block linear's weight is
          stored in float8_e4m3 with one scale per output row, and each activation is quantised per row on the fly;
          the matmul runs on the FP8 tensor cores (Hopper and Ada: compute capability 8.9 or newer) at up to twice the
          bf16 rate. Only the 40 transformer blocks' attention and feed-forward linears are converted (about 97% of
          the FLOPs); embeddings, the timestep and text projections, norms and the output head stay as they are.

FP8 changes the numbers: outputs differ from bf16 by far more than rounding (`helios bench speed` reports the
pixel difference of the first chunk against the bf16 run of the same seed), and whether a given checkpoint's
quality survives it must be judged on its outputs. That is why it is off by default.

Why torchao: it is PyTorch's own quantisation library, its FP8 tensors work under torch.compile (Inductor fuses the
activation quantisation into the preceding ops), and it chooses cuBLAS/CUTLASS row-wise kernels itself. It is an
optional dependency (`pip install helios[fp8]`); nothing imports it unless fp8 is asked for.
"""

from __future__ import annotations

import torch

from helios_core.errors import ConfigError

QUANTIZE_CHOICES = ("none", "fp8")
_MIN_CAPABILITY = (8, 9)


def torchao_import_error() -> str | None:
    try:
        import torchao.quantization  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means "not usable here"
        return f"{type(err).__name__}: {err}"
    return None


def require_quantization(choice: str, device: torch.device) -> None:
    """A one-line ConfigError, before any weights load, when `choice` cannot run here."""
    if choice not in QUANTIZE_CHOICES:
        raise ConfigError(f"runtime.quantize must be one of {', '.join(QUANTIZE_CHOICES)}; got '{choice}'")
    if choice == "none":
        return
    if device.type != "cuda":
        raise ConfigError("runtime.quantize=fp8 needs a CUDA GPU with FP8 tensor cores (compute capability 8.9+)")
    capability = torch.cuda.get_device_capability(device)
    if capability < _MIN_CAPABILITY:
        raise ConfigError(f"runtime.quantize=fp8 needs compute capability 8.9 or newer (Ada, Hopper); this GPU is "
                          f"{capability[0]}.{capability[1]}")
    if torchao_import_error() is not None:
        raise ConfigError(f"runtime.quantize=fp8 needs torchao (pip install 'helios[fp8]'): {torchao_import_error()}")


def is_block_linear(module: torch.nn.Module, name: str) -> bool:
    """The layers fp8 converts: nn.Linear inside `blocks.N.` (attention q/k/v/out, feed-forward), nothing else."""
    return isinstance(module, torch.nn.Linear) and name.startswith("blocks.")


def quantize_transformer(transformer: torch.nn.Module, choice: str) -> int:
    """Apply `choice` in place; returns how many linear layers were converted (0 for "none")."""
    if choice == "none":
        return 0
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    targets = [name for name, module in transformer.named_modules() if is_block_linear(module, name)]
    # set_inductor_config=False: torchao would otherwise switch on Inductor options such as coordinate-descent
    # tuning for the whole process; with them, compiling the 14B model's blocks ran past 280 s on an H100.
    config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)
    quantize_(transformer, config, filter_fn=is_block_linear)
    return len(targets)

"""Checkpoints: everything a run needs to continue exactly where it stopped, as safetensors + JSON (no pickle).

    out_dir/checkpoints/step_000500/
        trainable.safetensors    the trainable weights (LoRA adapter, or the whole transformer), fp32, by name
        optimizer.safetensors    AdamW state flattened to tensors: "<param name>/exp_avg", "/exp_avg_sq", "/step"
        ema.safetensors          the EMA of the trainable weights (when enabled)
        <extra>.safetensors      a stage's own state (DMD: critic.safetensors, critic_optimizer.safetensors; they
                                 hold the GAN heads too when distill.gan is on)
        rng_rank<r>.safetensors  each process's training generator and torch RNG states (uint8 tensors)
        state.json               step, data position, learning rate, world size
        config.yaml              the resolved training config (what `--config` takes; read back on resume/export)

Invariants: a checkpoint folder appears only complete (written under a hidden name, then renamed), so the newest
`step_*` folder is always loadable; only the last `keep_last` are kept. Optimizer state is matched to parameters by
name, never by position, so a checkpoint cannot silently load into the wrong tensors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from helios_core.errors import ConfigError
from helios_core.presets import read_yaml_mapping
from helios_core.training.config import TrainConfig

CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class RunState:
    step: int
    data_position: int
    learning_rate: float
    world_size: int


def checkpoint_dirs(out_dir: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    root = Path(out_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()
             and (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: Path) -> Path | None:
    dirs = checkpoint_dirs(out_dir)
    return dirs[-1] if dirs else None


def rng_states(generator: torch.Generator) -> dict[str, torch.Tensor]:
    states = {"train_generator": generator.get_state(), "torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"torch_cuda_{index}"] = state
    return states


def restore_rng(states: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    generator.set_state(states["train_generator"])
    torch.set_rng_state(states["torch_cpu"])
    cuda = [states[f"torch_cuda_{i}"] for i in range(torch.cuda.device_count()) if f"torch_cuda_{i}" in states]
    if cuda and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def optimizer_state_tensors(optimizer: torch.optim.Optimizer, names: list[str]) -> dict[str, torch.Tensor]:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    tensors: dict[str, torch.Tensor] = {}
    for name, param in zip(names, params, strict=True):
        for key, value in optimizer.state.get(param, {}).items():
            tensors[f"{name}/{key}"] = (value if torch.is_tensor(value) else torch.tensor(value)).detach().cpu()
    return tensors


def load_optimizer_state(optimizer: torch.optim.Optimizer, names: list[str], tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, Any]] = {}
    known = set(names)
    stray = sorted({key.rsplit("/", 1)[0] for key in tensors} - known)
    if stray:
        raise ConfigError(f"checkpoint optimizer state names parameter {stray[0]} that this model does not train; "
                          "the LoRA or full fine-tuning settings differ from the run that wrote it")
    for index, name in enumerate(names):
        entries = {key.rsplit("/", 1)[1]: value for key, value in tensors.items() if key.rsplit("/", 1)[0] == name}
        if entries:
            state[index] = entries
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})


def save_checkpoint(out_dir: Path, run: RunState, config: TrainConfig, trainables: dict[str, torch.nn.Parameter],
                    optimizer: torch.optim.Optimizer, ema: dict[str, torch.Tensor] | None,
                    rng_by_rank: list[dict[str, torch.Tensor]], keep_last: int,
                    extra: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    root = Path(out_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{run.step:06d}"
    staging = root / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    names = list(trainables)
    save_file({n: p.detach().float().cpu().contiguous() for n, p in trainables.items()},
              str(staging / "trainable.safetensors"))
    save_file(optimizer_state_tensors(optimizer, names), str(staging / "optimizer.safetensors"))
    if ema is not None:
        save_file({n: t.cpu().contiguous() for n, t in ema.items()}, str(staging / "ema.safetensors"))
    for stem, tensors in (extra or {}).items():
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(staging / f"{stem}.safetensors"))
    for rank, states in enumerate(rng_by_rank):
        save_file({k: v.contiguous() for k, v in states.items()}, str(staging / f"rng_rank{rank}.safetensors"))
    (staging / "state.json").write_text(json.dumps(run.__dict__, indent=2), encoding="utf-8")
    # PyYAML, like the preset reader: JSON would write 1e-08, which YAML 1.1 reads back as a string.
    (staging / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    if final.exists():  # a rerun of the same step after a crash: the new one replaces it
        shutil.rmtree(final)
    staging.rename(final)
    for old in checkpoint_dirs(out_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint_config(checkpoint: Path) -> TrainConfig:
    return TrainConfig.from_dict(read_yaml_mapping(Path(checkpoint) / "config.yaml", "checkpoint config"))


def load_checkpoint(checkpoint: Path, trainables: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                    ema: dict[str, torch.Tensor] | None, rank: int) -> tuple[RunState, dict[str, torch.Tensor]]:
    """Copy weights, optimizer and EMA state into the live objects; return the run state and this rank's RNG states."""
    checkpoint = Path(checkpoint)
    weights = load_file(str(checkpoint / "trainable.safetensors"))
    if set(weights) != set(trainables):
        missing = sorted(set(trainables) - set(weights)) or sorted(set(weights) - set(trainables))
        raise ConfigError(f"checkpoint {checkpoint} does not match this model's trainable weights ({missing[0]}); "
                          "was it written with other LoRA settings?")
    with torch.no_grad():
        for name, param in trainables.items():
            param.copy_(weights[name])
    load_optimizer_state(optimizer, list(trainables), load_file(str(checkpoint / "optimizer.safetensors")))
    if ema is not None:
        saved = load_file(str(checkpoint / "ema.safetensors"))
        for name, tensor in ema.items():
            tensor.copy_(saved[name])
    state = RunState(**json.loads((checkpoint / "state.json").read_text(encoding="utf-8")))
    rng_file = checkpoint / f"rng_rank{rank}.safetensors"
    if not rng_file.is_file():
        raise ConfigError(f"checkpoint {checkpoint} was written by {state.world_size} process(es) and has no RNG "
                          f"state for rank {rank}; resume with the same number of GPUs")
    return state, load_file(str(rng_file))


def load_extra_state(checkpoint: Path, stems: tuple[str, ...]) -> dict[str, dict[str, torch.Tensor]]:
    """The stage-specific files `save_checkpoint(extra=...)` wrote, by file stem."""
    found: dict[str, dict[str, torch.Tensor]] = {}
    for stem in stems:
        path = Path(checkpoint) / f"{stem}.safetensors"
        if not path.is_file():
            raise ConfigError(f"checkpoint {checkpoint} has no {path.name}; it was written by another training stage")
        found[stem] = load_file(str(path))
    return found

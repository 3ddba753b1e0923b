"""Flags + `--set` + preset (or `--from NAME.json`) + defaults -> one resolved `GenerationConfig`.

Precedence, highest first (the README and `helios generate --help` state the same):
    1. dedicated flags (`--steps`, `--height`, `--seconds`, ...)
    2. `--set key=value` overrides, in the order given
    3. the preset (`--preset`; default `distilled` with --model, `default` for the embedded model), or the config
       recorded in `--from NAME.json`
    4. the dataclass defaults in `helios_core.config`
For a batch item, its own `set` and `seconds`/`frames` come on top of all of these (the more specific wins).

Every step goes through `apply_overrides`, so an unknown key or a wrong type fails the same way wherever it came
from, as a ConfigError naming the key, before any weights load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helios_core.config import GenerationConfig, apply_overrides
from helios_core.errors import ConfigError
from helios_core.presets import load_preset, parse_set_option
from helios_core.request import PromptSegment

DEFAULT_PRESET = GenerationConfig().preset
EMBEDDED_PRESET = "default"  # the embedded model's own preset, used when no --model is given
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class ConfigFlags:
    """The flags that map onto config keys; None means "not given on the command line"."""

    preset: str | None = None
    set_items: tuple[str, ...] = ()
    seconds: float | None = None
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    fps: float | None = None
    steps: str | None = None
    guidance: float | None = None
    negative_prompt: str | None = None
    device: str | None = None
    dtype: str | None = None
    compile: bool | None = None
    offload: str | None = None
    anti_drift: bool | None = None
    crf: int | None = None
    default_preset: str = DEFAULT_PRESET  # used when `preset` is None and there is no --from record


def parse_steps(text: str, num_stages: int) -> tuple[int, ...]:
    """`--steps 4` -> 4 for every stage of the resolved sampler; `--steps 20,10,5` -> one per stage."""
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"\d+", p) for p in parts) or any(int(p) < 1 for p in parts):
        raise ConfigError(f"--steps expects a positive integer or a comma list like 20,20,20, got '{text}'")
    if len(parts) == 1:
        return (int(parts[0]),) * num_stages
    if len(parts) != num_stages:
        raise ConfigError(
            f"--steps gives {len(parts)} values but the sampler has {num_stages} stage(s); give one value for "
            f"every stage, or a single number"
        )
    return tuple(int(p) for p in parts)


def flag_values(flags: ConfigFlags, num_stages: int) -> dict[str, Any]:
    """The dotted config keys the dedicated flags set (only the flags actually given)."""
    if flags.seconds is not None and flags.frames is not None:
        raise ConfigError("give --seconds or --frames, not both")
    values: dict[str, Any] = {}
    if flags.seconds is not None:
        if not flags.seconds > 0:
            raise ConfigError(f"--seconds must be positive, got {flags.seconds:g}")
        values["video.seconds"] = flags.seconds
        values["video.num_frames"] = None  # a preset's frame count would otherwise win over --seconds
    if flags.frames is not None:
        if flags.frames < 1:
            raise ConfigError(f"--frames must be positive, got {flags.frames}")
        values["video.num_frames"] = flags.frames
    simple = {
        "video.height": flags.height,
        "video.width": flags.width,
        "video.fps": flags.fps,
        "sampler.guidance_scale": flags.guidance,
        "prompt.negative_prompt": flags.negative_prompt,
        "runtime.dtype": flags.dtype,
        "runtime.compile": flags.compile,
        "runtime.offload": flags.offload,
        "drift.anti_drift": flags.anti_drift,
        "output.crf": flags.crf,
    }
    values.update({key: value for key, value in simple.items() if value is not None})
    if flags.device is not None:
        if not _DEVICE.match(flags.device):
            raise ConfigError(f"--device must be auto, cpu, cuda or cuda:N, got '{flags.device}'")
        values["runtime.device"] = flags.device
    if flags.steps is not None:
        values["sampler.steps"] = parse_steps(flags.steps, num_stages)
    return values


def resolve_config(flags: ConfigFlags, base: GenerationConfig | None = None) -> GenerationConfig:
    """Apply the precedence above. `base` is the `--from` config; without it the preset (or the default) is used."""
    if base is not None and flags.preset is not None:
        raise ConfigError("give --from or --preset, not both (--from already records its preset's settings)")
    config = base if base is not None else load_preset(flags.preset or flags.default_preset)
    set_values = dict(parse_set_option(item) for item in flags.set_items)
    # One apply for --set and flags together, validated once at the end: `--set sampler.kind=flow_unipc --steps 30`
    # is consistent as a whole even though the --set alone (one kind, three stages of steps) is not.
    merged = {**set_values, **flag_values(flags, _num_stages(config, set_values))}
    return apply_overrides(config, merged)


def _num_stages(config: GenerationConfig, set_values: dict[str, Any]) -> int:
    """How many values `--steps N` expands to: the sampler's stages once --set is applied."""
    steps = set_values.get("sampler.steps")
    if isinstance(steps, (list, tuple)) and steps:
        return len(steps)
    kind = set_values.get("sampler.kind", config.sampler.kind)
    if kind == "flow_unipc":
        return 1
    # A pyramid sampler: keep the preset's stage count unless the preset was single-stage (then the usual 3).
    return config.sampler.num_stages if config.sampler.num_stages > 1 else 3


def with_item_values(
    config: GenerationConfig, overrides: dict[str, Any], seconds: float | None, frames: int | None
) -> GenerationConfig:
    """A batch item's own settings on top of the command line's."""
    values = dict(overrides)
    if seconds is not None:
        values.update({"video.seconds": seconds, "video.num_frames": None})
    if frames is not None:
        values["video.num_frames"] = frames
    return apply_overrides(config, values) if values else config


@dataclass(frozen=True)
class FromRecord:
    """What `--from NAME.json` contributes: the resolved config, seed, prompt(s), inputs and model."""

    path: Path
    config: GenerationConfig
    seed: int
    prompt: str
    schedule: tuple[PromptSegment, ...] = ()
    image: Path | None = None
    video: Path | None = None
    model_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_from_record(path: Path) -> FromRecord:
    """Read a sidecar written by `run_to_file`; a missing or malformed file is a ConfigError naming it."""
    from helios_core.video import read_sidecar

    if not path.is_file():
        raise ConfigError(f"--from {path}: file does not exist")
    data = read_sidecar(path)
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise ConfigError(f"--from {path}: not a Helios sidecar (no 'config' section)")
    try:
        config = GenerationConfig.from_dict(data["config"])
    except ConfigError as err:
        raise ConfigError(f"--from {path}: {err}") from None
    seed = data.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--from {path}: 'seed' must be a non-negative integer, got {seed!r}")
    schedule_data = data.get("schedule") or []
    try:
        schedule = tuple(PromptSegment(float(s["start"]), str(s["prompt"])) for s in schedule_data)
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"--from {path}: malformed 'schedule' (expected a list of {{start, prompt}})") from None
    inputs = data.get("inputs") or {}
    model_path = data.get("model_path")
    return FromRecord(
        path=path,
        config=config,
        seed=seed,
        prompt=str(data.get("prompt") or ""),
        schedule=schedule,
        image=_recorded_path(inputs.get("image"), path),
        video=_recorded_path(inputs.get("video"), path),
        model_path=Path(model_path) if model_path else None,
    )


def _recorded_path(value: Any, sidecar: Path) -> Path | None:
    if not value:
        return None
    recorded = Path(str(value))
    # Sidecars record absolute input paths; a relative one is read relative to the sidecar's folder.
    return recorded if recorded.is_absolute() else sidecar.parent / recorded

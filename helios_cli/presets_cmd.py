"""`helios presets`: the presets that ship with Helios, and (`--keys`) every config key `--set` accepts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from helios_core.config import GenerationConfig, config_keys, flatten
from helios_core.presets import load_preset, preset_dir, preset_names


def presets(
    keys: Annotated[bool, typer.Option("--keys", help="List every key --set accepts, with its default.")] = False,
) -> None:
    """List presets (use one with --preset NAME), or the settable config keys."""
    console = Console(highlight=False, soft_wrap=True)
    if keys:
        defaults = flatten(GenerationConfig().to_dict())
        for key in config_keys():
            # JSON spelling (null, true, [1, 1, 1]) is also what --set parses, so a line can be copied as is.
            value = json.dumps(defaults[key], separators=(",", ":"))
            console.print(f"{key}={value}", markup=False)
        return
    table = Table("preset", "model", "sampler", "steps", "guidance", "size", box=None, pad_edge=False)
    for name in preset_names():
        config = load_preset(name)
        table.add_row(
            name,
            _model_family(name),
            config.sampler.kind,
            ",".join(map(str, config.sampler.steps)),
            f"{config.sampler.guidance_scale:g}",
            f"{config.video.height}x{config.video.width}",
        )
    console.print(table)


def _model_family(name: str) -> str:
    """The checkpoint a preset is for, from its opening comment (`# Helios-Base: ...` -> `Helios-Base`)."""
    for line in (preset_dir() / f"{name}.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").split(":")[0].strip()
    return ""

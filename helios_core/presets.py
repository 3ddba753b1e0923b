"""Named presets: YAML files of `GenerationConfig` sections (`presets/*.yaml` in the source tree).

A preset is plain data: `{sampler: {...}, video: {...}}`. Loading one applies it over the dataclass defaults with the
same type checks as `--set`, so a typo in a preset fails the same way as a typo on the command line. In a source
checkout (and an editable install) the files are read from the repository's `presets/`; an installed wheel carries
them as the package data `helios_core/_presets`.
"""

from __future__ import annotations

import re

from pathlib import Path
from typing import Any

import yaml

from helios_core.config import GenerationConfig, apply_overrides, flatten
from helios_core.errors import ConfigError


def preset_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_presets", here.parent / "presets"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError("Helios presets folder not found: the installation is incomplete")


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; any problem is a one-line ConfigError naming the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{what} {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of settings")
    return data


def load_preset(name_or_path: str) -> GenerationConfig:
    """A preset by name (`distilled`) or by path to a YAML file, resolved over the defaults."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = preset_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown preset '{name_or_path}' (available: {', '.join(preset_names())})")
    elif not path.is_file():
        raise ConfigError(f"preset file {path} does not exist")
    data = read_yaml_mapping(path, "preset")
    data.setdefault("preset", path.stem)
    return apply_overrides(GenerationConfig(), flatten(data))


def parse_set_option(item: str) -> tuple[str, Any]:
    """`sampler.steps=[2,2,2]` -> ("sampler.steps", [2, 2, 2]); values are YAML scalars or flow lists."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got '{item}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: cannot parse value '{raw}'") from None
    return key.strip(), _exponent_numbers(value)


# PyYAML follows YAML 1.1, which reads `4e-4` (no dot) as text; on a command line that is always meant as a number.
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _exponent_numbers(value: Any) -> Any:
    if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_exponent_numbers(v) for v in value]
    return value

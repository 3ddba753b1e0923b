"""The options `generate`, `animate` and `extend` share, declared once.

Each option is an `Annotated` alias (so flag names and help stay identical across commands), and
`with_common_options` appends all of them to a command's own signature and hands the command one `CommonOptions`
object. Typer reads `__signature__`, so `--help` lists the shared options under the command's own arguments.

None means "not given": only given flags override the preset (see resolve.py for the precedence).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from helios_cli.resolve import DEFAULT_PRESET, EMBEDDED_PRESET, ConfigFlags

LENGTH = "Length, size and rate"
SAMPLING = "Sampling"
MODEL = "Model and hardware"
OUTPUT = "Output"

SecondsOpt = Annotated[
    float | None,
    typer.Option("--seconds", help="Video length in seconds (default from the preset).", rich_help_panel=LENGTH),
]
FramesOpt = Annotated[
    int | None, typer.Option("--frames", help="Video length in frames (instead of --seconds).", rich_help_panel=LENGTH)
]
HeightOpt = Annotated[int | None, typer.Option("--height", help="Height in pixels.", rich_help_panel=LENGTH)]
WidthOpt = Annotated[int | None, typer.Option("--width", help="Width in pixels.", rich_help_panel=LENGTH)]
FpsOpt = Annotated[
    float | None, typer.Option("--fps", help="Frame rate written into the file (default 24).", rich_help_panel=LENGTH)
]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", min=0, help="Random seed; random when absent (always printed and recorded).",
                 rich_help_panel=SAMPLING),
]
PresetOpt = Annotated[
    str | None,
    typer.Option("--preset", help="Preset name (base, mid, distilled) or a YAML file; see `helios presets`.",
                 rich_help_panel=SAMPLING),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE",
                 help="Override any config key, e.g. --set sampler.steps=[2,2,2] (repeatable; see "
                      "`helios presets --keys`). Precedence: flags > --set > preset > defaults.",
                 rich_help_panel=SAMPLING),
]
NegativePromptOpt = Annotated[
    str | None,
    typer.Option("--negative-prompt", help="What to avoid (used when guidance > 1).", rich_help_panel=SAMPLING),
]
StepsOpt = Annotated[
    str | None,
    typer.Option("--steps", help="Denoising steps: one number for every stage, or a comma list per stage (20,20,20).",
                 rich_help_panel=SAMPLING),
]
GuidanceOpt = Annotated[
    float | None, typer.Option("--guidance", help="Classifier-free guidance scale (1 = off).", rich_help_panel=SAMPLING)
]
AntiDriftOpt = Annotated[
    bool | None,
    typer.Option("--anti-drift/--no-anti-drift", help="Correct drift when the detector flags it.",
                 rich_help_panel=SAMPLING, show_default=False),
]
ScheduleOpt = Annotated[
    Path | None,
    typer.Option("--schedule", help="Timed prompts: lines like '0:00 a fox' / '12.5 the fox jumps', or YAML/JSON.",
                 rich_help_panel=SAMPLING),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", envvar="HELIOS_MODEL", help="Diffusers-format model folder (default: the embedded model).",
                 rich_help_panel=MODEL),
]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.", rich_help_panel=MODEL)
]
class Dtype(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"


class Offload(str, Enum):
    none = "none"
    group = "group"


DtypeOpt = Annotated[
    Dtype | None,
    typer.Option("--dtype", help="Weight precision (auto: bf16 on GPU, fp32 on CPU).", rich_help_panel=MODEL),
]
CompileOpt = Annotated[
    bool | None,
    typer.Option("--compile/--no-compile", help="torch.compile the transformer.", rich_help_panel=MODEL,
                 show_default=False),
]
OffloadOpt = Annotated[
    Offload | None,
    typer.Option("--offload", help="group: stream transformer blocks from CPU memory to fit a small GPU (CUDA only).",
                 rich_help_panel=MODEL),
]
GpusOpt = Annotated[
    int,
    typer.Option("--gpus", min=1,
                 help="GPUs of this host: one video is split across them (sequence parallel); with --prompts each "
                      "GPU makes its own share of the items. Starts its workers itself; torchrun also works.",
                 rich_help_panel=MODEL),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Output .mp4 (default outputs/<prompt>-<seed>.mp4), or a folder.",
                 rich_help_panel=OUTPUT),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing output file.", rich_help_panel=OUTPUT)
]
CrfOpt = Annotated[
    int | None, typer.Option("--crf", help="H.264 quality, 1-51, lower is better (default 18).", rich_help_panel=OUTPUT)
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Plain lines instead of a progress bar.", rich_help_panel=OUTPUT)
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON result per video as the last stdout line (other output to stderr).",
                 rich_help_panel=OUTPUT),
]


@dataclass(frozen=True)
class CommonOptions:
    seconds: float | None = None
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    fps: float | None = None
    seed: int | None = None
    preset: str | None = None
    set_items: list[str] | None = None
    negative_prompt: str | None = None
    steps: str | None = None
    guidance: float | None = None
    anti_drift: bool | None = None
    schedule: Path | None = None
    model: Path | None = None
    device: str | None = None
    dtype: Dtype | None = None
    compile: bool | None = None
    offload: Offload | None = None
    gpus: int = 1
    output: Path | None = None
    overwrite: bool = False
    crf: int | None = None
    quiet: bool = False
    json: bool = False

    def config_flags(self) -> ConfigFlags:
        names = {f.name for f in fields(ConfigFlags)} - {"set_items", "default_preset"}
        # Enum choices travel on as their plain string values, which is what the config holds.
        values = {name: getattr(self, name) for name in names}
        values = {name: value.value if isinstance(value, Enum) else value for name, value in values.items()}
        # No --model and no HELIOS_MODEL: the embedded model runs, and without --preset it gets the preset made for
        # it (a `--from` record brings its own config and model instead).
        default_preset = EMBEDDED_PRESET if self.model is None else DEFAULT_PRESET
        return ConfigFlags(set_items=tuple(self.set_items or ()), default_preset=default_preset, **values)


def _common_signature(
    seconds: SecondsOpt = None,
    frames: FramesOpt = None,
    height: HeightOpt = None,
    width: WidthOpt = None,
    fps: FpsOpt = None,
    seed: SeedOpt = None,
    preset: PresetOpt = None,
    set_items: SetOpt = None,
    negative_prompt: NegativePromptOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    anti_drift: AntiDriftOpt = None,
    schedule: ScheduleOpt = None,
    model: ModelOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    compile: CompileOpt = None,
    offload: OffloadOpt = None,
    gpus: GpusOpt = 1,
    output: OutputOpt = None,
    overwrite: OverwriteOpt = False,
    crf: CrfOpt = None,
    quiet: QuietOpt = False,
    json: JsonOpt = False,
) -> None:
    """Only its signature is used: the shared options, in the order `--help` shows them."""


_COMMON_PARAMETERS = list(inspect.signature(_common_signature, eval_str=True).parameters.values())


def with_common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give `command(own args..., common: CommonOptions)` the shared options as real Typer parameters."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "common"]
    common_names = [p.name for p in _COMMON_PARAMETERS]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        common = CommonOptions(**{name: kwargs.pop(name) for name in common_names})
        return command(**kwargs, common=common)

    wrapper.__signature__ = inspect.Signature([*own, *_COMMON_PARAMETERS])  # type: ignore[attr-defined]
    # functools.wraps copied the command's string annotations; Typer must use the evaluated signature instead.
    wrapper.__annotations__ = {}
    del wrapper.__wrapped__  # inspect.signature would otherwise follow it back to the undecorated command
    return wrapper

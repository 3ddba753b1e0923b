"""The world bench (issue 6): generate held-out world prompts with a model and judge the videos by measurement.

    report = run_world_quality(WorldQualitySettings(config, models=(WorldModel("full", path),), num_prompts=50))

For each of `num_prompts` held-out prompts (world_quality_prompts.py) and each model, one video of the configured
length is generated (each model loads once), streamed into `out_dir/LABEL/NNN.mp4` with its sidecar, and measured
as it streams (world_quality_measure.py): judge adherence, drift, seams. The world's own clip of the same scene is
rendered, measured and written once per prompt (`out_dir/rendered/NNN.mp4`) as the reference of the drift ratios.
The full report goes to `out_dir/world_quality.json`. With several models (the ablation table), every model gets
the same prompts and the same seeds.

With `vae_ceiling`, the first model's row is followed by LABEL-vae: the world's clips of the same prompts through
that model's VAE (world_quality_sources.vae_round_trip_source), the most any transformer sampled in that latent space
can score.

`sources` replaces loading a model by a frame source for some labels (tests inject the rendered clip itself, or
synthetic videos); `on_video(label, prompt, measures, drift_ratios)` is called after each video (for the reference:
label "rendered", ratios None). Nothing here prints.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helios_core.bench.world_quality_measure import VideoMeasures, WorldVideoMeter, drift_ratios
from helios_core.bench.world_quality_prompts import WorldPrompt, heldout_prompts
from helios_core.bench.world_quality_report import (
    RENDERED_LABEL,
    TARGET_ADHERENCE,
    TARGET_DRIFT_RATIO,
    TARGET_SEAM_RATIO,
    WORLD_TABLE_COLUMNS,
    ModelSummary,
    VideoResult,
    WorldQualityReport,
    world_table_rows,
)
from helios_core.bench.world_quality_sources import (
    FrameSource,
    FrameSourceEngine,
    check_model,
    load_model,
    release_memory,
    rendered_source,
    vae_round_trip_source,
)
from helios_core.config import GenerationConfig
from helios_core.embedded.config import EMBEDDED_HEIGHT, EMBEDDED_WIDTH
from helios_core.errors import ConfigError, OutputPathError
from helios_core.request import GenerationRequest
from helios_core.runner import check_sidecar_path, run_to_file
from helios_core.video import check_output_path
from helios_core.world import WORLD_FPS

__all__ = [
    "DEFAULT_OUT_DIR",
    "DEFAULT_PROMPTS",
    "DEFAULT_SECONDS",
    "REPORT_NAME",
    "TARGET_ADHERENCE",
    "TARGET_DRIFT_RATIO",
    "TARGET_SEAM_RATIO",
    "WORLD_HEIGHT",
    "WORLD_TABLE_COLUMNS",
    "WORLD_WIDTH",
    "FrameSource",
    "ModelSummary",
    "VideoMeasures",
    "VideoResult",
    "WorldModel",
    "WorldPrompt",
    "WorldQualityReport",
    "WorldQualitySettings",
    "heldout_prompts",
    "rendered_source",
    "run_world_quality",
    "world_table_rows",
]

# The embedded default model's training size: the world bench's default video size.
WORLD_HEIGHT, WORLD_WIDTH = EMBEDDED_HEIGHT, EMBEDDED_WIDTH
DEFAULT_PROMPTS = 50
DEFAULT_SECONDS = 60.0
DEFAULT_OUT_DIR = Path("outputs/world-quality")
REPORT_NAME = "world_quality.json"
MIN_SECONDS = 1.0  # the judge reads motion over whole seconds
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a label names a folder of videos

# (label, prompt, measures, drift ratios against the rendered clip; None for the rendered clip itself)
OnVideo = Callable[[str, WorldPrompt, VideoMeasures, "dict[str, float] | None"], None]


@dataclass(frozen=True)
class WorldModel:
    """A model to bench: its row label and its folder (None = the embedded default model)."""

    label: str
    path: Path | None = None

    @property
    def name(self) -> str:
        return "default" if self.path is None else str(self.path)


@dataclass(frozen=True)
class WorldQualitySettings:
    """`config` is the resolved generation config (size, length, sampler, device) every video is made with."""

    config: GenerationConfig
    models: tuple[WorldModel, ...]
    num_prompts: int = DEFAULT_PROMPTS
    seed: int = 0
    out_dir: Path = DEFAULT_OUT_DIR
    write_videos: bool = True
    overwrite: bool = False
    vae_ceiling: bool = False  # add the first model's VAE round trip as a row (see the module docstring)

    @property
    def rows(self) -> tuple[WorldModel, ...]:
        """The models, with the VAE ceiling row (LABEL-vae, the first model's folder) after the first when asked."""
        if not self.vae_ceiling or not self.models:
            return self.models
        first = self.models[0]
        return (first, WorldModel(ceiling_label(first.label), first.path), *self.models[1:])

    def validate(self) -> None:
        video = self.config.validate().video
        if video.requested_pixel_frames < MIN_SECONDS * video.fps:
            raise ConfigError(f"world videos must be at least {MIN_SECONDS:g} s long for the judge to read motion")
        if video.fps != WORLD_FPS:
            raise ConfigError(f"the world moves at {WORLD_FPS} fps; world videos cannot use video.fps={video.fps:g}")
        if not self.models:
            raise ConfigError("the world bench needs at least one model")
        labels = [model.label for model in self.rows]
        for label in labels:
            if not _LABEL.match(label) or label == RENDERED_LABEL:
                raise ConfigError(f"model label {label!r} must be letters, digits, '.', '_' or '-' and not "
                                  f"'{RENDERED_LABEL}' (it names the folder of its videos)")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"model labels must differ, got {', '.join(labels)}")

    def to_dict(self) -> dict[str, Any]:
        video = self.config.video
        return {"prompts": self.num_prompts, "seconds": video.requested_pixel_frames / video.fps,
                "vae_ceiling": self.vae_ceiling,
                "frames": video.requested_pixel_frames, "seed": self.seed, "height": video.height,
                "width": video.width, "fps": video.fps, "preset": self.config.preset, "out_dir": str(self.out_dir)}


def run_world_quality(settings: WorldQualitySettings, *, sources: Mapping[str, FrameSource] | None = None,
                      on_video: OnVideo | None = None) -> WorldQualityReport:
    """Run the bench; see the module docstring. Every check that needs no weights runs before the first load."""
    settings.validate()
    sources = dict(sources or {})
    ceiling = ceiling_label(settings.models[0].label) if settings.vae_ceiling else None
    if ceiling is not None:
        sources.setdefault(ceiling, vae_round_trip_source(settings.models[0].path, settings.config.runtime.device))
    prompts = heldout_prompts(settings.num_prompts, settings.seed)
    for model in settings.models:
        if model.label not in sources:
            check_model(model.path, _request(settings.config, prompts[0]))
    report_path = _check_outputs(settings, prompts)
    reference = FrameSourceEngine(RENDERED_LABEL, rendered_source, prompts)
    rendered: dict[int, VideoMeasures] = {}  # model-independent: measured once, along with the first model
    summaries = []
    for model in settings.rows:
        if model.label in sources:
            engine: Any = FrameSourceEngine(model.label, sources[model.label], prompts)
        else:
            engine = load_model(model.path, settings.config)
        videos = _bench_model(engine, model, prompts, settings, reference, rendered, on_video)
        del engine  # the last reference: the next model must not load while this one holds GPU memory
        release_memory()
        if model.label == ceiling:
            name = f"vae of {model.name}"
        else:
            name = "frame source" if model.label in sources else model.name
        summaries.append(ModelSummary(label=model.label, model=name, videos=videos))
    report = WorldQualityReport(settings=settings.to_dict(), prompts=prompts,
                                rendered=tuple(rendered[item.index] for item in prompts), models=tuple(summaries))
    _write_report(report, report_path)
    return report


def ceiling_label(label: str) -> str:
    """The VAE ceiling row's label for the model labelled `label`."""
    return f"{label}-vae"


def _bench_model(engine: Any, model: WorldModel, prompts: tuple[WorldPrompt, ...], settings: WorldQualitySettings,
                 reference: FrameSourceEngine, rendered: dict[int, VideoMeasures],
                 on_video: OnVideo | None) -> tuple[VideoResult, ...]:
    """One model's video of every prompt, each measured against the rendered clip (rendered first if not yet)."""
    # In each sidecar, so `helios generate --from LABEL/NNN.json` remakes the video with the same model.
    recorded_model = {"model_path": str(model.path.absolute()) if model.path is not None else None}
    results = []
    for item in prompts:
        if item.index not in rendered:
            rendered[item.index] = _measure(reference, item, settings, RENDERED_LABEL, {})
            if on_video is not None:
                on_video(RENDERED_LABEL, item, rendered[item.index], None)
        measures = _measure(engine, item, settings, model.label, recorded_model)
        ratios = drift_ratios(measures, rendered[item.index])
        if on_video is not None:
            on_video(model.label, item, measures, ratios)
        output = _video_path(settings, model.label, item)
        results.append(VideoResult(index=item.index, prompt=item.prompt, seed=item.seed, measures=measures,
                                   drift_ratio=ratios, video=str(output) if output is not None else None))
    return tuple(results)


def _request(config: GenerationConfig, item: WorldPrompt) -> GenerationRequest:
    return GenerationRequest(config=config, seed=item.seed, prompt=item.prompt)


def _video_path(settings: WorldQualitySettings, label: str, item: WorldPrompt) -> Path | None:
    return settings.out_dir / label / f"{item.index + 1:03d}.mp4" if settings.write_videos else None


def _check_outputs(settings: WorldQualitySettings, prompts: tuple[WorldPrompt, ...]) -> Path:
    """Refuse, before any work, to replace an earlier run's report or videos without `overwrite`."""
    report_path = settings.out_dir / REPORT_NAME
    if report_path.exists() and not settings.overwrite:
        raise OutputPathError(f"{report_path} already exists; pass --overwrite or choose another --out folder")
    try:
        settings.out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.out_dir):  # the reliable writability test (see video.output_path)
            pass
    except OSError as error:
        raise OutputPathError(f"cannot write to --out {settings.out_dir} ({error.strerror or error})") from None
    for label in [RENDERED_LABEL, *(model.label for model in settings.rows)]:
        for item in prompts:
            path = _video_path(settings, label, item)
            if path is not None:
                check_output_path(path, settings.overwrite)
                check_sidecar_path(path, settings.overwrite)
    return report_path


def _measure(engine: Any, item: WorldPrompt, settings: WorldQualitySettings, label: str,
             metadata: dict[str, Any]) -> VideoMeasures:
    """Stream one video from `engine` (into its MP4 when videos are written) through a meter."""
    config = settings.config
    meter = WorldVideoMeter(item.prompt, config.video.fps, config.video.requested_pixel_frames)
    request = _request(config, item)
    output = _video_path(settings, label, item)
    if output is None:
        for chunk in engine.generate(request):
            meter.push(chunk.pixel_frames)
    else:
        run_to_file(engine, request, output, overwrite=settings.overwrite,
                    on_chunk=lambda chunk: meter.push(chunk.pixel_frames),
                    extra_metadata={**metadata, "world_bench": {"label": label, "prompt_index": item.index}})
    return meter.finish()


def _write_report(report: WorldQualityReport, path: Path) -> None:
    """Write the full report atomically (a temporary name, then a rename): a report on disk is always whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        raise OutputPathError(f"cannot write {path}: {error.strerror}") from None

"""The world bench's results: per video, per model (with the issue's targets), and the whole report.

Summaries over the prompt set are plain means of the per-video values: adherence, each drift ratio, the seam ratio
(seam_max is the worst boundary of any video). The targets of issue 6, checked on those means:
    adherence >= 0.90,   every drift ratio <= 2 (x the world's own clip),   seam ratio <= 1.5.
The rendered clips are reported beside the models as the reference: their adherence is the judge's ceiling on
these prompts (occlusions cost a little even on a perfect video) and their seam ratio should read about 1.
Each row's `shapes_seen` sums its videos' counts of which shape the judge saw for each prompted one (the JSON only,
not the table): it says what a lost shape became, e.g. a VAE that turns diamonds and triangles into circles.
`color_errors` sums the seconds each colour was missing or extra in the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from helios_core.bench.world_quality_measure import DRIFT_METRICS, VideoMeasures
from helios_core.bench.world_quality_prompts import WorldPrompt

TARGET_ADHERENCE = 0.90
TARGET_DRIFT_RATIO = 2.0
TARGET_SEAM_RATIO = 1.5
TARGETS = {"adherence_min": TARGET_ADHERENCE, "drift_ratio_max": TARGET_DRIFT_RATIO,
           "seam_ratio_max": TARGET_SEAM_RATIO}
RENDERED_LABEL = "rendered"

# Drift and seam columns are ratios ("x"): drift against the world's clip, seams against the inside of chunks.
WORLD_TABLE_COLUMNS = (
    ("label", "Model"), ("adherence", "Adherence"), ("color_adherence", "Colour"), ("shape_adherence", "Shape"),
    ("motion_adherence", "Motion"), ("drift_color", "dE x"), ("drift_brightness", "Bright x"),
    ("drift_saturation", "Sat x"), ("drift_sharpness", "Sharp x"), ("seam_ratio", "Seams x"), ("result", "Targets"),
)
_ADHERENCE_KEYS = ("adherence", "color_adherence", "shape_adherence", "motion_adherence")


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _summed(clips: Iterable[VideoMeasures], field_name: str) -> dict[str, dict[str, int]]:
    """A nested-count field of the clips (shapes_seen, color_errors) added up, keys sorted so the JSON is stable."""
    totals: dict[str, Counter[str]] = {}
    for clip in clips:
        for key, counts in getattr(clip, field_name).items():
            totals.setdefault(key, Counter()).update(counts)
    return {key: dict(sorted(counts.items())) for key, counts in sorted(totals.items())}


@dataclass(frozen=True)
class VideoResult:
    """One generated video: what was asked, what was measured, and its drift ratios against the rendered clip."""

    index: int
    prompt: str
    seed: int
    measures: VideoMeasures
    drift_ratio: dict[str, float]
    video: str | None  # the MP4, when videos are written

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "prompt": self.prompt, "seed": self.seed, "video": self.video,
                "drift_ratio": self.drift_ratio, **asdict(self.measures)}


@dataclass(frozen=True)
class ModelSummary:
    """One model's videos over the prompt set, and their means against the targets."""

    label: str
    model: str  # the folder, or "default"
    videos: tuple[VideoResult, ...]

    def mean(self, key: str) -> float:
        return _mean([getattr(video.measures, key) for video in self.videos])

    @property
    def drift_ratio(self) -> dict[str, float]:
        return {name: _mean([video.drift_ratio[name] for video in self.videos]) for name in DRIFT_METRICS}

    @property
    def checks(self) -> dict[str, bool]:
        return {
            "adherence": self.mean("adherence") >= TARGET_ADHERENCE,
            "drift": all(ratio <= TARGET_DRIFT_RATIO for ratio in self.drift_ratio.values()),
            "seams": self.mean("seam_ratio") <= TARGET_SEAM_RATIO,
        }

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def to_dict(self, with_videos: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "model": self.model}
        data.update({key: self.mean(key) for key in _ADHERENCE_KEYS})
        measures = [video.measures for video in self.videos]
        data.update({"drift_ratio": self.drift_ratio, "seam_ratio": self.mean("seam_ratio"),
                     "seam_max": max((clip.seam_max for clip in measures), default=1.0),
                     "shapes_seen": _summed(measures, "shapes_seen"),
                     "color_errors": _summed(measures, "color_errors"),
                     "checks": self.checks, "pass": self.passed})
        if with_videos:
            data["videos"] = [video.to_dict() for video in self.videos]
        return data


@dataclass(frozen=True)
class WorldQualityReport:
    """The whole run: settings, prompt set, the rendered reference per prompt, and one summary per model."""

    settings: dict[str, Any]  # JSON-ready: prompts, seconds, seed, size, preset, out folder
    prompts: tuple[WorldPrompt, ...]
    rendered: tuple[VideoMeasures, ...]  # index-aligned with `prompts`
    models: tuple[ModelSummary, ...]

    def rendered_summary(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": RENDERED_LABEL}
        data.update({key: _mean([getattr(clip, key) for clip in self.rendered]) for key in _ADHERENCE_KEYS})
        data["seam_ratio"] = _mean([clip.seam_ratio for clip in self.rendered])
        data["drift"] = {name: _mean([clip.drift[name] for clip in self.rendered]) for name in DRIFT_METRICS}
        data["shapes_seen"] = _summed(self.rendered, "shapes_seen")
        data["color_errors"] = _summed(self.rendered, "color_errors")
        return data

    def to_dict(self, with_videos: bool = True) -> dict[str, Any]:
        """JSON-ready; without videos it is the compact summary (a row per model label) the CLI prints last."""
        data: dict[str, Any] = {"bench": "world_quality", "settings": self.settings, "targets": TARGETS,
                                "rendered": self.rendered_summary(),
                                "models": [model.to_dict(with_videos) for model in self.models]}
        if with_videos:
            data["prompts"] = [{"index": item.index, "prompt": item.prompt, "seed": item.seed,
                                "rendered": asdict(clip)} for item, clip in zip(self.prompts, self.rendered)]
        return data


def world_table_rows(report: WorldQualityReport) -> list[dict[str, object]]:
    """The rendered reference, then one row per model, keyed as WORLD_TABLE_COLUMNS; numbers rounded for display."""
    reference = report.rendered_summary()
    rows = [{**{key: reference[key] for key in _ADHERENCE_KEYS},
             **{f"drift_{name}": 1.0 for name in DRIFT_METRICS},  # the reference's ratio to itself
             "label": RENDERED_LABEL, "seam_ratio": reference["seam_ratio"], "result": "reference"}]
    for model in report.models:
        failed = [name for name, ok in model.checks.items() if not ok]
        row: dict[str, object] = {"label": model.label, "seam_ratio": model.mean("seam_ratio"),
                                  "result": "pass" if not failed else "FAIL: " + ", ".join(failed)}
        row.update({key: model.mean(key) for key in _ADHERENCE_KEYS})
        row.update({f"drift_{name}": ratio for name, ratio in model.drift_ratio.items()})
        rows.append(row)
    return [{key: round(row[key], 2) if isinstance(row[key], float) else row[key] for key, _ in WORLD_TABLE_COLUMNS}
            for row in rows]

"""Offline, model-free quality report of an MP4: per-second metric series, HeliosBench-style drift, seams.

`score_video` streams the file through ffmpeg (imageio_ffmpeg.read_frames), which also shrinks frames to at
most `analysis_width` px wide in its own process, so memory stays O(frames) floats and decoding overlaps the
metric work. Metrics and their units are defined in `helios_core.metrics`; in particular motion is in pixels per
frame of the SOURCE video (flow is rescaled by source width / analysed width), and the seam score of a boundary
is its frame difference over the median difference inside the neighbouring chunks (about 1 = no seam).
Drift of a metric (HeliosBench): |mean over the first 15% of frames - mean over the last 15%|; `color` drift is
the Delta-E between those two mean a*b* colours.
`plot_report` needs matplotlib (optional dependency, imported on use, Agg canvas: no display, no global
backend switch).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from helios_core.errors import MediaError, OutputPathError, UserInputError
from helios_core.metrics.motion import motion_smoothness
from helios_core.metrics.series import FRAME_SERIES, PAIR_SERIES, FrameSeriesAccumulator, per_second
from helios_core.metrics.temporal import SEAM_FLOOR, edge_drift, flicker, seam_scores

# Farneback dominates the cost: at 160x90 a 60 s, 24 fps video scores in ~10-15 s on a 2-core CPU box (about
# 10x faster than at 640x360), and sub-pixel flow still resolves a 1 px/frame pan of the source.
ANALYSIS_WIDTH = 160
DRIFT_METRICS = ("brightness", "saturation", "lab_l", "lab_a", "lab_b", "sharpness", "frame_difference",
                 "motion_amount")
TABLE_COLUMNS = (
    ("video", "Video"), ("seconds", "Seconds"), ("motion_amount", "Motion px/f"),
    ("motion_smoothness", "Smoothness"), ("flicker", "Flicker"), ("seam_median", "Seam"),
    ("seam_max", "Seam max"), ("brightness_drift", "Bright. drift"), ("saturation_drift", "Sat. drift"),
    ("color_drift", "Colour drift dE"), ("sharpness_drift", "Sharp. drift"),
)


@dataclass(frozen=True)
class QualityReport:
    path: str
    fps: float
    frame_count: int
    width: int  # source size
    height: int
    analysed_width: int
    analysed_height: int
    chunk_pixel_frames: int
    per_second: dict[str, list[float]]  # metric -> mean over each second (second s covers [s, s + 1))
    means: dict[str, float]
    drift: dict[str, float]
    motion_amount: float  # mean flow magnitude, source px/frame
    motion_smoothness: float  # (0, 1], 1 = constant-velocity motion (metrics.motion)
    flicker: float  # std of de-trended brightness, 0..1 luma units
    seam_scores: list[dict[str, float]]  # per boundary: boundary_frame, second, score
    seam_median: float  # the typical boundary (1.0 when the video has no boundary)
    seam_max: float

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def to_dict(self) -> dict[str, object]:
        """JSON-able dict (plain floats, ints, strings, lists)."""
        data = asdict(self)
        data["duration_s"] = self.duration_s
        return data


class _DropResizeNotice(logging.Filter):
    # imageio_ffmpeg logs a warning whenever ffmpeg's output size differs from the source size, which is
    # exactly what we ask for; the engine must not write to the console, so that one notice is dropped.
    def filter(self, record: logging.LogRecord) -> bool:
        return "is different from the source frame size" not in record.getMessage()


@contextmanager
def _quiet_resize_notice() -> Iterator[None]:
    logger = logging.getLogger("imageio_ffmpeg")
    notice_filter = _DropResizeNotice()
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)


def _read_batches(path: Path, analysis_width: int, batch_frames: int) -> Iterator[tuple[dict, np.ndarray]]:
    """Yield (ffmpeg metadata, uint8 frames (N, h, w, 3)) batches, shrunk by ffmpeg to <= analysis_width."""
    import imageio_ffmpeg  # imported here so the metrics stay importable where ffmpeg is not installed

    scale = f"scale=w='min(iw,{analysis_width})':h=-2:flags=area"
    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-vf", scale])
    try:
        with _quiet_resize_notice():
            meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as error:
        raise MediaError(f"{path}: ffmpeg cannot read it as a video ({str(error).splitlines()[0]})") from None
    width, height = meta["size"]
    batch: list[np.ndarray] = []
    try:
        for raw in reader:
            batch.append(np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3))
            if len(batch) == batch_frames:
                yield meta, np.stack(batch)
                batch = []
    except (OSError, RuntimeError) as error:  # a truncated or corrupt stream fails mid-way
        raise MediaError(f"{path}: decoding failed part-way ({str(error).splitlines()[0]}); re-export it") from None
    if batch:
        yield meta, np.stack(batch)


def score_video(path: Path, chunk_pixel_frames: int = 33, analysis_width: int = ANALYSIS_WIDTH) -> QualityReport:
    """Compute the quality report of one video file (raises MediaError if it is missing or unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such video file; pass the path of an existing .mp4")
    if chunk_pixel_frames < 2:
        raise UserInputError(f"chunk_pixel_frames must be at least 2, got {chunk_pixel_frames}")
    accumulator: FrameSeriesAccumulator | None = None
    meta: dict = {}
    for meta, frames in _read_batches(path, analysis_width, chunk_pixel_frames):
        if accumulator is None:
            source_width = meta["source_size"][0]
            accumulator = FrameSeriesAccumulator(pixel_scale=source_width / frames.shape[2])
        accumulator.push(frames)
    if accumulator is None or accumulator.frame_count == 0:
        raise MediaError(f"{path}: the video has no frames; re-export it")
    fps = float(meta.get("fps") or 0.0)
    if fps <= 0:
        raise MediaError(f"{path}: the video has no frame rate in its header; re-mux it with ffmpeg -r")
    return _build_report(path, meta, fps, chunk_pixel_frames, accumulator)


def _build_report(
    path: Path, meta: dict, fps: float, chunk_pixel_frames: int, accumulator: FrameSeriesAccumulator
) -> QualityReport:
    series = accumulator.arrays()
    per_second_series = {name: per_second(series[name], fps).tolist() for name in FRAME_SERIES}
    # Pair value i is the change INTO frame i + 1, so it is binned with that frame.
    per_second_series.update({name: per_second(series[name], fps, offset_frames=1).tolist() for name in PAIR_SERIES})
    drift = {name: edge_drift(series[name]) for name in DRIFT_METRICS}
    drift["color"] = float(np.hypot(drift["lab_a"], drift["lab_b"]))
    seams = seam_scores(series["frame_difference"], chunk_pixel_frames, SEAM_FLOOR)
    seam_values = np.array([seam.score for seam in seams]) if seams else np.ones(1)
    analysed_width, analysed_height = meta["size"]
    return QualityReport(
        path=str(path),
        fps=fps,
        frame_count=accumulator.frame_count,
        width=int(meta["source_size"][0]),
        height=int(meta["source_size"][1]),
        analysed_width=int(analysed_width),
        analysed_height=int(analysed_height),
        chunk_pixel_frames=chunk_pixel_frames,
        per_second=per_second_series,
        means={name: float(values.mean()) if values.size else 0.0 for name, values in series.items()},
        drift=drift,
        motion_amount=float(series["motion_amount"].mean()) if series["motion_amount"].size else 0.0,
        motion_smoothness=motion_smoothness(series["motion_amount"], accumulator.jerks),
        flicker=flicker(series["brightness"], fps),
        seam_scores=[{"boundary_frame": seam.boundary_frame, "second": seam.boundary_frame / fps,
                      "score": seam.score} for seam in seams],
        seam_median=float(np.median(seam_values)),
        seam_max=float(seam_values.max()),
    )


def format_table(reports: list[QualityReport]) -> list[dict[str, object]]:
    """One row per report, keyed as TABLE_COLUMNS (key, header) in order; numbers rounded for display."""
    rows = []
    for report in reports:
        values = {
            "video": Path(report.path).name,
            "seconds": report.duration_s,
            "motion_amount": report.motion_amount,
            "motion_smoothness": report.motion_smoothness,
            "flicker": report.flicker,
            "seam_median": report.seam_median,
            "seam_max": report.seam_max,
            "brightness_drift": report.drift["brightness"],
            "saturation_drift": report.drift["saturation"],
            "color_drift": report.drift["color"],
            "sharpness_drift": report.drift["sharpness"],
        }
        rows.append({key: round(value, 4) if isinstance(value, float) else value for key, value in values.items()})
    return rows


_PLOTTED = (
    ("brightness", "brightness (0-1)"), ("saturation", "saturation (0-1)"), ("lab_a", "a* / b*"),
    ("sharpness", "sharpness"), ("frame_difference", "frame difference"), ("motion_amount", "motion px/frame"),
)


def plot_report(report: QualityReport, png_path: Path) -> Path:
    """Write a PNG of the per-second metrics and the seam scores, chunk boundaries as dotted vertical lines."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserInputError("plotting a quality report needs matplotlib: pip install matplotlib") from None
    png_path = Path(png_path)
    if not png_path.parent.is_dir():
        raise OutputPathError(f"{png_path}: folder {png_path.parent} does not exist; create it or pick another path")
    figure = Figure(figsize=(10, 2.0 * (len(_PLOTTED) + 1)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(_PLOTTED) + 1, 1, sharex=True)
    boundaries = [seam["second"] for seam in report.seam_scores]
    for axis, (name, label) in zip(axes, _PLOTTED):
        seconds = np.arange(len(report.per_second[name])) + 0.5
        axis.plot(seconds, report.per_second[name], label=name)
        if name == "lab_a":
            axis.plot(seconds, report.per_second["lab_b"], label="lab_b")
            axis.legend(loc="upper right", fontsize="small")
        axis.set_ylabel(label)
    seam_axis = axes[-1]
    seam_axis.plot(boundaries, [seam["score"] for seam in report.seam_scores], "o-", color="tab:red")
    seam_axis.axhline(1.0, color="gray", linewidth=0.8)
    seam_axis.set_ylabel("seam score")
    seam_axis.set_xlabel("seconds")
    for axis in axes:
        for second in boundaries:
            axis.axvline(second, color="gray", linestyle=":", linewidth=0.6)
    figure.suptitle(f"{Path(report.path).name}: drift {report.drift['brightness']:.3f} brightness, "
                    f"{report.drift['color']:.1f} dE colour; seam median {report.seam_median:.2f}")
    try:
        figure.savefig(png_path, dpi=80)
    except OSError as error:
        raise OutputPathError(f"{png_path}: cannot write the plot ({error.strerror})") from None
    return png_path

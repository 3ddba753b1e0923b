"""Per-frame measurements for the judge: palette colour segmentation, then each colour's blob and its shape.

Segmentation: every pixel gets the named colour whose tones are nearest in CIELAB, through a 32x32x32 lookup table
built once (indexing a table is what makes judging a 60 s video take seconds). A colour's tones are its base RGB and
its background shade, each at brightness 0.8x to 1.2x (the world's lighting change), plus the blends between the
two. Pixels far from every tone (more than MAX_LAB_DISTANCE) get no colour.

Blob: the mask of one colour is opened with a small disk, which removes the thin rings of mixed colour that
anti-aliasing, blur and compression leave around every edge (a red-on-blue edge reads as purple). A colour is present
when its opened mask still has MIN_AREA_FRACTION of the short side squared. Before looking for the blob the mask is
rolled so its emptiest columns and rows sit at the frame edge; an object wrapping around the frame edge is then one
blob again. Shape features come from the un-opened mask's components that touch the blob, so star points survive.
Centre and area weigh rim pixels by how much of them the object covers (`_coverage`), so they move smoothly.

Shape from features (thresholds measured on the world's own renders, clean and blurred/compressed):
  solidity < 0.82 -> star; extent > 0.86 -> square; extent > 0.68 -> circle;
  otherwise triangle if the blob's mass sits low in its box (apex up), else diamond.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from helios_core.world.vocabulary import COLORS, shade_of

COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
NO_COLOR = -1
MAX_LAB_DISTANCE = 30.0
MIN_AREA_FRACTION = 0.003  # of short_side**2; the smallest object (a small star at 0.7x) covers about 0.010
_LUT_BITS = 5
_TOUCH_KERNEL = np.ones((5, 5), np.uint8)
_TOUCH_PIXELS = 3


@lru_cache(maxsize=1)
def _label_table() -> np.ndarray:
    """(32, 32, 32) int8 table: quantised RGB -> index into COLOR_NAMES, or NO_COLOR."""
    tones, owners = [], []
    for index, name in enumerate(COLOR_NAMES):
        base, shade = np.array(COLORS[name], np.float32), np.array(shade_of(name), np.float32)
        for blend in np.linspace(0.0, 1.0, 7):
            for gain in np.linspace(0.8, 1.2, 9):
                tones.append(np.clip((base + (shade - base) * blend) * gain, 0, 255))
                owners.append(index)
    tone_lab = _to_lab(np.array(tones, np.float32))
    step = 1 << (8 - _LUT_BITS)
    levels = np.arange(1 << _LUT_BITS, dtype=np.float32) * step + step / 2
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    grid_lab = _to_lab(grid)
    # Squared distances by the expansion |a|^2 + |b|^2 - 2ab: one matrix product instead of a (grid, tones, 3) array.
    squared = (grid_lab**2).sum(1)[:, None] + (tone_lab**2).sum(1)[None, :] - 2.0 * grid_lab @ tone_lab.T
    nearest = squared.argmin(axis=1)
    labels = np.array(owners, np.int8)[nearest]
    labels[squared[np.arange(len(grid)), nearest] > MAX_LAB_DISTANCE**2] = NO_COLOR
    size = 1 << _LUT_BITS
    return labels.reshape(size, size, size)


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor((rgb / 255.0).reshape(-1, 1, 3).astype(np.float32), cv2.COLOR_RGB2Lab).reshape(-1, 3)


def label_frames(pixel_frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, H, W) int8 palette labels (NO_COLOR where nothing is close)."""
    quantised = pixel_frames >> (8 - _LUT_BITS)
    return _label_table()[quantised[..., 0], quantised[..., 1], quantised[..., 2]]


@dataclass(frozen=True)
class BlobMeasure:
    """One colour's blob in one frame. Coordinates in pixels, centre wrapped into the frame."""

    center_x: float
    center_y: float
    area: float
    shape: str | None  # None when the blob is too small or broken to tell
    touches_other: bool  # another object colour borders it: it may be occluded or occluding, so its outline lies


def open_kernel(short_side: int) -> np.ndarray:
    radius = max(1, round(0.016 * short_side))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def present_colors(labels: np.ndarray, kernel: np.ndarray, min_area: float) -> set[int]:
    """Indices of colours with a solid blob in this frame (opened area at least min_area)."""
    counts = np.bincount((labels.astype(np.int16) + 1).ravel(), minlength=len(COLOR_NAMES) + 1)[1:]
    present = set()
    for index in np.flatnonzero(counts >= min_area):
        opened = cv2.morphologyEx((labels == index).view(np.uint8), cv2.MORPH_OPEN, kernel)
        if np.count_nonzero(opened) >= min_area:
            present.add(int(index))
    return present


def measure_blob(
    labels: np.ndarray,
    pixels: np.ndarray,
    color_index: int,
    kernel: np.ndarray,
    min_area: float,
    other_indices: tuple[int, ...] = (),
) -> BlobMeasure | None:
    """The largest solid blob of one colour in one frame (labels (H, W), pixels (H, W, 3)), or None when absent.

    other_indices: the other objects' colours; the blob `touches_other` when one of them lies within two pixels.
    """
    raw = (labels == color_index).view(np.uint8)
    opened = cv2.morphologyEx(raw, cv2.MORPH_OPEN, kernel)
    if np.count_nonzero(opened) < min_area:
        return None
    height, width = raw.shape
    shift = (-_emptiest_line(opened.sum(axis=1)), -_emptiest_line(opened.sum(axis=0)))
    opened = np.roll(opened, shift, axis=(0, 1))
    # The largest outer contour is the blob (findContours is several times faster than labelling components).
    contours, _ = cv2.findContours(opened, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    largest = max(contours, key=cv2.contourArea)
    # Everything else happens in the blob's box, widened by what the opening may have cut off plus the touch margin.
    margin = kernel.shape[0] + _TOUCH_KERNEL.shape[0]
    left, top, box_w, box_h = cv2.boundingRect(largest)
    rows = slice(max(top - margin, 0), min(top + box_h + margin, height))
    cols = slice(max(left - margin, 0), min(left + box_w + margin, width))
    core = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
    cv2.drawContours(core, [largest], 0, 1, thickness=cv2.FILLED, offset=(-cols.start, -rows.start))
    core &= opened[rows, cols]
    if np.count_nonzero(core) < min_area:
        return None
    # The same crop of the un-rolled frame, by wrapped indices (cheaper than rolling whole frames).
    source = np.ix_(
        (np.arange(rows.start, rows.stop) - shift[0]) % height, (np.arange(cols.start, cols.stop) - shift[1]) % width
    )
    crop_labels, crop_pixels = labels[source], pixels[source]
    _, raw_labels = cv2.connectedComponents((crop_labels == color_index).view(np.uint8), connectivity=8)
    touching = np.unique(raw_labels[core.astype(bool)])
    keep = np.zeros(int(raw_labels.max()) + 1, np.uint8)  # lookup table: faster than np.isin on small crops
    keep[touching[touching > 0]] = 1
    blob = keep[raw_labels]
    near = cv2.dilate(blob, _TOUCH_KERNEL).astype(bool)
    touches_other = bool(
        other_indices and np.count_nonzero(_member_table(other_indices)[crop_labels[near]]) >= _TOUCH_PIXELS
    )
    weights = _coverage(blob, crop_pixels, near)
    total = float(weights.sum())
    ys, xs = np.indices(weights.shape)
    return BlobMeasure(
        center_x=float(((xs * weights).sum() / total + cols.start - shift[1]) % width),
        center_y=float(((ys * weights).sum() / total + rows.start - shift[0]) % height),
        area=total,
        shape=classify_shape(blob),
        touches_other=touches_other,
    )


def _coverage(blob: np.ndarray, pixels: np.ndarray, near: np.ndarray) -> np.ndarray:
    """How much of each pixel the object covers: 1 inside, a fraction on its anti-aliased or blurred rim.

    The binary mask moves in whole-pixel steps, which at 64 px is as large as an object's motion in a few frames;
    reading rim pixels as a linear mix of the object's colour and the colour just outside gives sub-pixel centres and
    smooth areas. We do this by hand: it is a projection, not something a library offers for a per-blob pair of colours.
    """
    ring_kernel = np.ones((3, 3), np.uint8)
    core = cv2.erode(blob, ring_kernel)
    if not core.any():
        core = blob
    rim = cv2.dilate(blob, ring_kernel).astype(bool) & ~core.astype(bool)
    outside = near & ~cv2.dilate(blob, ring_kernel).astype(bool)
    weights = core.astype(np.float32)
    if not rim.any() or not outside.any():
        return np.maximum(weights, blob.astype(np.float32))
    object_color = np.median(pixels[core.astype(bool)], axis=0).astype(np.float32)
    outside_color = np.median(pixels[outside], axis=0).astype(np.float32)
    direction = outside_color - object_color
    norm = float(direction @ direction)
    if norm < 1.0:  # no contrast to read a mix from
        return np.maximum(weights, blob.astype(np.float32))
    mix = (pixels[rim].astype(np.float32) - object_color) @ direction / norm
    weights[rim] = np.clip(1.0 - mix, 0.0, 1.0)
    return weights


@lru_cache(maxsize=64)
def _member_table(indices: tuple[int, ...]) -> np.ndarray:
    """Boolean table over int8 labels (indexable by -1 too): True for the given colour indices."""
    table = np.zeros(256, bool)
    table[list(indices)] = True
    return table


def _emptiest_line(profile: np.ndarray) -> int:
    """Index of the middle of the widest near-empty stretch of a circular profile (where to cut the torus)."""
    window = max(1, len(profile) // 4)
    padded = np.concatenate([profile[-window:], profile, profile[:window]]).astype(np.float64)
    smoothed = np.convolve(padded, np.ones(2 * window + 1), mode="valid")
    return int(np.argmin(smoothed))


def shape_features(blob: np.ndarray) -> dict[str, float] | None:
    """Solidity, extent and mass height of a blob's outer contour; None when it is too small to tell.

    solidity: area / convex hull area (a star's points leave gaps). extent: area / bounding box area (a square fills
    its box, a circle pi/4 of it, a triangle or diamond half). mass_height: where the centre of mass sits between the
    box's top (0) and bottom (1): 2/3 for a triangle with its apex up, 1/2 for a diamond.
    """
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    _, _, box_w, box_h = cv2.boundingRect(contour)
    area = cv2.contourArea(contour)
    if box_w < 5 or box_h < 5 or area <= 0:
        return None
    moments = cv2.moments(contour)
    # The contour runs through pixel centres, so its box spans one pixel less than the pixel box.
    return {
        "solidity": area / max(cv2.contourArea(cv2.convexHull(contour)), 1e-9),
        "extent": area / ((box_w - 1) * (box_h - 1)),
        "mass_height": (moments["m01"] / moments["m00"] - contour[:, 0, 1].min()) / (box_h - 1),
    }


def classify_shape(blob: np.ndarray) -> str | None:
    """Shape word for a blob (thresholds in the module docstring), or None when it is too small to tell."""
    features = shape_features(blob)
    if features is None:
        return None
    if features["solidity"] < 0.82:
        return "star"
    if features["extent"] > 0.86:
        return "square"
    if features["extent"] > 0.68:
        return "circle"
    return "triangle" if features["mass_height"] > 0.58 else "diamond"

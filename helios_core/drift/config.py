"""Drift detector settings (`DriftConfig`) and the warning record it emits (`DriftWarning`).

Pixel thresholds are heuristics for generated, minute-long, single-shot videos; each is justified next to it.
"Anchor" = the first observed chunk; "recent" = the mean of the `recent_chunks` chunks before the current one.
The anchor check catches slow creep; the recent check catches a fast change before it has built up against
the anchor, so it uses tighter thresholds than a minute of natural variation would need.
Invariant: the defaults keep a clean 60 s shot (static, moving object, pan, +/-10% lighting) warning-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from helios_core.errors import ConfigError


@dataclass(frozen=True)
class DriftConfig:
    # --- The paper's latent rule (Helios AdaptiveAntiDrifting; values from the official code) ---
    latent_ema_rho_mean: float = 0.9
    latent_ema_rho_var: float = 0.9
    # Both L2 distances (over the 16 channels, averaged over the batch) must exceed these. They assume latents
    # of real size (thousands of values per channel); on tiny latents sampling noise alone approaches 0.15.
    latent_mean_threshold: float = 0.15
    latent_var_threshold: float = 0.15
    latent_noise_strength: float = 0.1  # the remedy's sigma, additive (see latent.add_history_noise)

    # --- Pixel checks ---
    # 128 px wide keeps a 33-frame chunk at a few ms of CPU; exposure/colour means are scale-free, and sharpness
    # is measured at a fixed width anyway (metrics.sharpness).
    analysis_width: int = 128
    # Frames are analysed as this many consecutive pairs spread evenly over the chunk (first and last frame
    # always included): shrinking a frame costs ~1 ms at 384x640 on one CPU core, the stats need no more than
    # 16 of 33 frames, and pairs keep the inside differences of the seam check one frame apart like the boundary.
    # 32 or more analyses every frame of a 33-frame chunk.
    sampled_pairs_per_chunk: int = 8
    # Brightness, relative change of mean luma. Natural light in a one-minute shot (clouds, auto-exposure) moves
    # about +/-10%; 18% is roughly a quarter stop, visible side by side with the first frame. 12% within a few
    # seconds is faster than natural light changes short of a cut.
    brightness_anchor_threshold: float = 0.18
    brightness_recent_threshold: float = 0.12
    # Saturation, relative change of mean HSV S. S does not move with exposure, so it only changes with content
    # or drift; the Helios over-saturation runaway grows it by tens of percent. 25% is clearly visible.
    saturation_anchor_threshold: float = 0.25
    saturation_recent_threshold: float = 0.18
    # Colour cast, Delta-E of the mean a*b* colour. 2.3 is one JND for patches; a whole-frame cast of 7 is
    # obvious (the yellow tint of Helios #146), 5 within a few seconds is a cast building up, not content.
    color_anchor_threshold: float = 7.0
    color_recent_threshold: float = 5.0
    # Sharpness, |log2| of the Laplacian-variance ratio. Content makes it vary a lot, so only halving/doubling
    # against the anchor (and 0.75, i.e. -40%, within a few seconds) counts as blur creeping in or ringing.
    sharpness_anchor_threshold: float = 1.0
    sharpness_recent_threshold: float = 0.75
    # Seam, boundary difference / median inside difference (metrics.temporal). Uneven motion makes single pairs
    # differ from the median by tens of percent; a boundary 3x the typical change reads as a cut.
    seam_threshold: float = 3.0
    seam_floor: float = 2.0 / 255.0  # differences below ~2 grey levels count as invisible
    relative_floor: float = 0.1  # denominator floor for relative brightness/saturation changes of dark/grey scenes
    recent_chunks: int = 3  # about 4 s at 33 frames per chunk and 24 fps

    # --- Warning de-duplication ---
    rewarn_growth: float = 1.5  # warn again for an ongoing drift only once it is 1.5x the last warned severity
    clear_fraction: float = 0.6  # an ongoing drift ends when its severity drops below 0.6 of the threshold

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not value > 0:
                raise ConfigError(f"drift.{item.name} must be positive, got {value!r}")
        for name in ("latent_ema_rho_mean", "latent_ema_rho_var", "clear_fraction"):
            if not getattr(self, name) < 1.0:
                raise ConfigError(f"drift.{name} must be below 1, got {getattr(self, name)!r}")
        if self.rewarn_growth <= 1.0:
            raise ConfigError(f"drift.rewarn_growth must be above 1, got {self.rewarn_growth!r}")


@dataclass(frozen=True)
class DriftWarning:
    """One drift event. `value` and `threshold` are in the unit of the check that fired (see DriftConfig)."""

    kind: str  # "brightness", "saturation", "color", "sharpness", "seam" or "latent"
    value: float
    threshold: float
    second: float  # start of the chunk in the output video
    chunk_index: int
    message: str  # one line for people, e.g. "saturation up 38% vs anchor at 12.4 s"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

"""Drift detection for streamed Helios chunks: pixel checks, the paper's latent rule, and its noise remedy.

Public API: `DriftConfig`, `DriftWarning`, `DriftDetector` (per-chunk, online) and `add_history_noise` (the
remedy the engine applies to a chunk's latents when `DriftDetector.latent_drift_flag` is set).
"""

from helios_core.drift.config import DriftConfig, DriftWarning
from helios_core.drift.detector import DriftDetector
from helios_core.drift.latent import LatentDriftMeasure, LatentDriftRule, add_history_noise

__all__ = [
    "DriftConfig",
    "DriftDetector",
    "DriftWarning",
    "LatentDriftMeasure",
    "LatentDriftRule",
    "add_history_noise",
]

"""Per-chunk denoising: flow UniPC (Base), pyramid UniPC with CFG-Zero* (Mid) and pyramid DMD (Distilled)."""

from helios_core.samplers.denoise import ChunkDenoiser, TextConditioning, build_scheduler

__all__ = ["ChunkDenoiser", "TextConditioning", "build_scheduler"]

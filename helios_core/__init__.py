"""Helios engine: streaming, history-conditioned video generation (no CLI, no printing)."""

__version__ = "0.1.0"

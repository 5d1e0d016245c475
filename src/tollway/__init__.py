"""Tollway: one front door to every model."""

__version__ = "0.1.0"

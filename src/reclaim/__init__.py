"""Reclaim: find unused software licenses, ask, and take the unused ones back."""

__version__ = "0.1.0"

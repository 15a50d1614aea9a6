"""Small helpers shared by the model files."""

from __future__ import annotations

__all__ = ["scaled"]


def scaled(channels: int, mult: float) -> int:
    """``channels * mult`` rounded, at least 1: the width of a reduced model."""
    if mult <= 0:
        raise ValueError(f"width multiplier must be > 0, got {mult}")
    return max(1, int(round(channels * mult)))

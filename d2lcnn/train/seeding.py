"""Reproducible runs: :func:`seed_everything` seeds the global generators and returns
explicit ones to pass to whatever draws random numbers."""

from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["seed_everything", "Generators"]


class Generators(NamedTuple):
    """Explicit random generators returned by :func:`seed_everything`."""

    torch: torch.Generator  # for DataLoader(generator=...), torch.randn(generator=...)
    numpy: np.random.Generator  # for NumPy code: rng.normal(...), rng.permutation(...)


def seed_everything(seed: int) -> Generators:
    """Seed Python's ``random``, NumPy's legacy global state and torch (CPU and CUDA).

    The book prefers explicit generators, passed to whatever draws random numbers
    (``DataLoader(..., generator=gens.torch)``, ``gens.numpy.permutation(n)``): the global
    seeds are set too only so that code we do not control (weight initialisation, dropout,
    third-party helpers) is reproducible as well.

    Args:
        seed: a non-negative integer.

    Returns:
        ``Generators(torch=torch.Generator seeded with seed, numpy=np.random.default_rng(seed))``.

    Raises:
        TypeError: if ``seed`` is not an int. ValueError: if it is negative.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed_everything: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed_everything: seed must be >= 0, got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # the legacy global state accepts 32-bit seeds only
    torch.manual_seed(seed)  # also seeds every CUDA device
    return Generators(torch.Generator().manual_seed(seed), np.random.default_rng(seed))

"""Shared by the grading tests: the sandbox they use, homework 1 and short limits.

``ISOLATION`` is bubblewrap wherever it works. Under ``CI=true`` it must work (``.ci/run``
installs it): the OS-isolation tests never skip there.
"""

import os
from pathlib import Path

import pytest

from d2lcnn.grading.isolation import bwrap_status

ROOT = Path(__file__).resolve().parents[1]
HW1 = ROOT / "instructor" / "homework" / "hw1-convolution.py"
# Short limits: an infinite loop costs 1.5 s per cell or case instead of the real 20-60 s.
FAST = {"case_timeout": 1.5, "cell_timeout": 1.5, "memory_mb": 1024, "output_kb": 256}

BWRAP, BWRAP_WHY = bwrap_status()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ISOLATION = "bwrap" if BWRAP else "process"
# Tests of the OS layer run wherever bwrap works and never skip in CI (where a missing
# bwrap fails test_bwrap_is_available_in_ci instead).
needs_bwrap = pytest.mark.skipif(not BWRAP and not IN_CI, reason=BWRAP_WHY)

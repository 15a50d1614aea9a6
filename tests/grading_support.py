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
# D2LCNN_TEST_ISOLATION=process runs the whole grading suite (attacks included) in process
# mode, to check the protocol layer holds without the OS layer.
ISOLATION = os.environ.get("D2LCNN_TEST_ISOLATION") or ("bwrap" if BWRAP else "process")
# Tests of the OS layer run wherever bwrap works and never skip in CI (where a missing
# bwrap fails test_bwrap_is_available_in_ci instead).
needs_bwrap = pytest.mark.skipif(
    ISOLATION != "bwrap" and not (IN_CI and not os.environ.get("D2LCNN_TEST_ISOLATION")),
    reason=BWRAP_WHY if not BWRAP else "D2LCNN_TEST_ISOLATION chose process mode",
)
# A few tests assert the exact note the bwrap sandbox gives (process mode blocks the same
# attack one layer earlier, with another note and the same score): skipped when
# D2LCNN_TEST_ISOLATION forces process mode.
bwrap_notes = pytest.mark.skipif(
    os.environ.get("D2LCNN_TEST_ISOLATION") == "process",
    reason="asserts bwrap's note; D2LCNN_TEST_ISOLATION chose process mode",
)

"""One build of homework 1 per test session, with short timeouts so failure modes are fast."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HW1 = ROOT / "notebooks" / "homework" / "hw1-convolution.py"
# Short limits: an infinite loop costs 1.5 s per cell or case instead of the real 20-60 s.
FAST = {"case_timeout": 1.5, "cell_timeout": 1.5, "memory_mb": 1024, "output_kb": 256}


@pytest.fixture(scope="session")
def hw1_source():
    return HW1


@pytest.fixture(scope="session")
def fast_settings():
    return dict(FAST)


@pytest.fixture(scope="session")
def hw1(tmp_path_factory):
    """``{"out", "student", "bundle", "summary"}`` of hw1 assigned with the FAST settings."""
    from d2lcnn.grading.authoring import assign

    out = tmp_path_factory.mktemp("hw1")
    summary = assign(HW1, out, overrides=FAST)
    return {"out": out, "student": out / "student", "bundle": out / "autograder",
            "summary": summary}
